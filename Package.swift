// swift-tools-version:5.10
import Foundation
import PackageDescription

// One target per stage of the data flow:
//   files → rows → tokenized pairs (DPOData, Tokenization, ChatTemplates) → batches → forward/backward
//   (DPOModel on DPOKernels) → loss → gradient sync (DPOComm, DPODistributed) → AdamW → checkpoint
//   (DPOTraining, Safetensors). Each library depends only on the stages before it.
let package = Package(
    name: "dpo-dist",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dpo-dist", targets: ["dpo-dist"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // YAML training configs (`--config`), read into TrainingArguments.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C shims. Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, ...) are macros that Swift
        // cannot import, so the MPI header exposes them through static inline getters.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // oneDNN's matmul primitive, for bf16 products (`--bf16`); Debian's build ships no pkg-config file.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),

        // Errors, hashing, the RNG, JSON quoting.
        .target(name: "DPOSupport"),
        // Hugging Face chat templates (Jinja), byte-equal to transformers' apply_chat_template.
        .target(name: "ChatTemplates", dependencies: ["DPOSupport"]),
        // tokenizer.json: normalizer → pre-tokenizer → BPE → post-processor; decoding; chat rendering.
        .target(name: "Tokenization", dependencies: ["DPOSupport", "ChatTemplates"]),
        // The safetensors format: header validation, mmap reader, atomic writer.
        .target(name: "Safetensors", dependencies: ["DPOSupport"]),
        // Kernels and the matrix-product backend. The only target compiled without bounds checks:
        // it holds no parser, and every index it takes was checked where the data came in.
        .target(name: "DPOKernels", dependencies: ["DPOSupport", "COpenBLAS", "CDNNL"],
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        // config.json → architecture → parameter layout → decoder; model directories; generation.
        .target(name: "DPOModel", dependencies: ["DPOSupport", "DPOKernels", "Safetensors", "Tokenization"]),
        // Data files → rows → tokenized pairs and SFT examples → epoch order.
        .target(name: "DPOData", dependencies: ["DPOSupport", "Tokenization", "ChatTemplates"]),
        // How ranks talk: the Communicator protocol, one process, ranks as threads.
        .target(name: "DPOComm", dependencies: ["DPOSupport"]),
        // The training loop, objectives, losses, AdamW, gradient sync, checkpoints, metrics.
        .target(name: "DPOTraining", dependencies: [
            "DPOSupport", "DPOKernels", "DPOModel", "DPOData", "DPOComm", "Safetensors", "Tokenization", "ChatTemplates",
            .product(name: "Yams", package: "Yams"),
        ]),
        // The MPI communicator.
        .target(name: "DPODistributed", dependencies: ["DPOComm", "CMPI"]),
        .executableTarget(name: "dpo-dist", dependencies: [
            "DPOSupport", "DPOKernels", "DPOModel", "DPOData", "DPOComm", "DPOTraining", "DPODistributed",
            "Tokenization", "ChatTemplates",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Tests: one target per library, a shared support target, and the executable end to end.
        .target(name: "DPOTestSupport", dependencies: ["DPOTraining", "DPOComm", "DPOKernels"],
                path: "Tests/DPOTestSupport", resources: [.copy("Fixtures")]),
        .testTarget(name: "DPOSupportTests", dependencies: ["DPOSupport", "DPOTestSupport"]),
        .testTarget(name: "ChatTemplatesTests", dependencies: ["ChatTemplates", "DPOSupport", "DPOTestSupport"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "DPOSupport", "DPOTestSupport"]),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "DPOSupport", "DPOTestSupport"]),
        .testTarget(name: "DPOKernelsTests", dependencies: ["DPOKernels", "DPOSupport"]),
        .testTarget(name: "DPOModelTests", dependencies: ["DPOModel", "Safetensors", "Tokenization", "DPOSupport", "DPOTestSupport"]),
        .testTarget(name: "DPODataTests", dependencies: ["DPOData", "Tokenization", "DPOTestSupport"]),
        .testTarget(name: "DPOTrainingTests", dependencies: [
            "DPOTraining", "DPOModel", "DPOData", "DPOComm", "DPOKernels", "Safetensors", "DPOSupport", "DPOTestSupport",
        ]),
        .testTarget(name: "EndToEndTests", dependencies: ["dpo-dist", "DPOModel", "DPOSupport", "DPOTestSupport"]),
    ]
)

// libFuzzer harnesses for the parsers of untrusted input, only when asked for (fuzz/run builds them
// with DPO_DIST_FUZZ=1, address sanitizer and coverage); never part of a normal build.
if ProcessInfo.processInfo.environment["DPO_DIST_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzDriver", path: "fuzz/Sources/FuzzDriver"))
    let harnesses: [(String, Target.Dependency)] = [
        ("FuzzSafetensors", "Safetensors"), ("FuzzTokenizerJSON", "Tokenization"), ("FuzzChatTemplate", "ChatTemplates"),
        ("FuzzJSONRows", "DPOData"), ("FuzzYAMLConfig", "DPOTraining"),
    ]
    for (name, library) in harnesses {
        package.targets.append(.executableTarget(name: name, dependencies: [library, "FuzzDriver"], path: "fuzz/Sources/\(name)"))
    }
}
