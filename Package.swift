// swift-tools-version:5.10
import PackageDescription

let package = Package(
    name: "dpo-dist",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dpo-dist", targets: ["dpo-dist"]),
        .library(name: "DPOCore", targets: ["DPOCore"]),
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
        // The numeric core: model, kernels, tokenizer, formats. It never imports MPI.
        .target(name: "DPOCore", dependencies: ["COpenBLAS", .product(name: "Yams", package: "Yams")],
                swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        // Communicators: MPI, single process, in-process threads.
        .target(name: "DPODistributed", dependencies: ["DPOCore", "CMPI"]),
        .executableTarget(name: "dpo-dist", dependencies: [
            "DPOCore", "DPODistributed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "DPOCoreTests", dependencies: ["DPOCore"],
                    resources: [.copy("Fixtures")]),
    ]
)
