import ArgumentParser
import DPOKernels
import DPOSupport
import Foundation

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-kernels",
        abstract: "Time forward and backward on the SmolLM2-135M shape next to the plain sgemm rate.",
        discussion: """
        Builds a random model of the SmolLM2-135M shape (hidden 576, 30 layers, 9 heads, 3 KV heads, \
        intermediate 1536, vocab 49152, tied), runs forward (every next token scored) and backward over \
        --tokens tokens, and prints seconds and GFLOP/s beside cblas_sgemm's GFLOP/s on the same machine \
        in the same run. Build with -c release for meaningful numbers.
        """)

    @Option(help: "Tokens in the batch.") var tokens = 2048
    @Option(help: "Split the tokens into this many sequences (packed, no padding).") var sequences = 1
    @Option(help: "Timed rounds after one warm-up round (best is reported).") var repeats = 2
    @Option(help: "Layers (fewer for a quick look; FLOPs and rates stay comparable).") var layers = 30
    @Option(help: "Attend through a sliding window of this many keys in every layer, as Mistral (default: none).")
    var slidingWindow: Int?
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try runReportingErrors {
            guard tokens >= 2, sequences >= 1, sequences <= tokens / 2, layers >= 1, slidingWindow.map({ $0 >= 1 }) ?? true else {
                throw DPOError("--tokens must be at least 2, --sequences between 1 and tokens/2, --layers and --sliding-window at least 1")
            }
            threadOptions.apply()
            var config = KernelBenchmark.smolLM2_135M(layers: layers)
            config.spec.layerWindows = Array(repeating: slidingWindow, count: layers)
            let bench = KernelBenchmark(config: config, tokens: tokens, sequences: sequences)
            let host = ProcessInfo.processInfo
            print("machine: \(host.hostName), \(host.activeProcessorCount) cores; OpenBLAS threads: \(threadOptions.effective), kernels: \(BLASCore.name)")
            print("shape: SmolLM2-135M (hidden 576, \(layers) layers, 9 heads, 3 KV heads, intermediate 1536, vocab 49152, tied); \(tokens) tokens in \(sequences) sequence(s)"
                  + (slidingWindow.map { "; sliding window \($0)" } ?? ""))
            let r = bench.run(repeats: repeats) { note($0) }
            let (m, n, k) = r.sgemmShape
            print(String(format: "sgemm %dx%dx%d:        %8.1f GFLOP/s", m, n, k, r.sgemmGFLOPS))
            print(String(format: "forward:   %8.3f s  %8.1f GFLOP/s  (%.1f GFLOP)", r.forwardSeconds, r.forwardGFLOPS, r.forwardFLOPs / 1e9))
            print(String(format: "backward:  %8.3f s  %8.1f GFLOP/s  (%.1f GFLOP)", r.backwardSeconds, r.backwardGFLOPS, r.backwardFLOPs / 1e9))
            print(String(format: "fwd+bwd:   %8.3f s  %8.1f GFLOP/s  = %.0f%% of the sgemm rate", r.forwardSeconds + r.backwardSeconds, r.totalGFLOPS, 100 * r.shareOfSgemm))
        }
    }
}
