import ArgumentParser
import DPOComm
import DPODistributed
import DPOKernels
import DPOTraining
import Foundation

struct BenchComm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-comm",
        abstract: "Gradient communication per training step on the SmolLM2-135M shape (run under mpirun).",
        discussion: """
        launch/mpi 2 bench-comm: each rank trains one random sequence of --tokens tokens per step; prints the \
        step time, the time steps waited for gradient reductions that backward did not hide (buckets started \
        during backward), a blocking all-reduce of the whole gradient on its own, and the bytes against the \
        ring lower bound 2(p-1)/p x gradient bytes. Gradients are reduced in fp64 (see `train`).
        """)

    @Option(help: "Tokens per rank per step.") var tokens = 512
    @Option(help: "Timed steps after one warm-up step.") var steps = 3
    @Option(help: "Layers of the model (30 for SmolLM2-135M).") var layers = 30
    @Option(help: "Bucket size in MB (of fp32 gradient).") var bucketSizeMB = 25.0
    @Option(help: "Reduce each bucket with a blocking all-reduce as backward finishes it (true), or a non-blocking one progressed between layers (false). Default: blocking when every rank is on one host.") var blockingBuckets: Bool?
    @Option(help: "OpenBLAS threads per rank (default: cores / ranks).") var threads: Int?

    func run() throws {
        try runReportingErrors {
            let env = ProcessInfo.processInfo.environment
            let comm: Communicator = env["OMPI_COMM_WORLD_SIZE"] != nil ? MPICommunicator() : SingleProcessCommunicator()
            let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "1") ?? 1
            let blasThreads = threads ?? Int(env["OPENBLAS_NUM_THREADS"] ?? "") ?? max(1, ProcessInfo.processInfo.activeProcessorCount / local)
            setBLASThreads(blasThreads)
            let config = KernelBenchmark.smolLM2_135M(layers: layers)
            let r = try CommunicationBenchmark.run(config: config, tokens: tokens, steps: steps, comm: comm,
                                                   parallel: ParallelOptions(bucketSizeMB: bucketSizeMB, blockingBuckets: blockingBuckets))
            if comm.isMain {
                let p = Double(comm.worldSize)
                let ring = 2 * (p - 1) / p * r.gradientBytes
                let host = ProcessInfo.processInfo
                print("machine: \(host.hostName), \(host.activeProcessorCount) cores; \(comm.worldSize) ranks × \(blasThreads) OpenBLAS threads (\(BLASCore.name) kernels)")
                print("model: SmolLM2-135M shape, \(layers) layers, \(r.parameters) parameters; \(tokens) tokens per rank per step; buckets of \(bucketSizeMB) MB, \((blockingBuckets ?? comm.allRanksOnOneHost) ? "blocking" : "non-blocking, progressed between layers")")
                print(String(format: "step:                          %8.3f s", r.stepSeconds))
                print(String(format: "in reduction calls during the step: %6.3f s = %.1f%% of the step (not overlapped with compute)", r.inCallsSeconds, 100 * r.inCallsSeconds / r.stepSeconds))
                print(String(format: "  of which waiting after backward: %6.3f s = %.1f%%", r.exposedSeconds, 100 * r.exposedSeconds / r.stepSeconds))
                print(String(format: "blocking all-reduce of the gradient: %6.3f s = %.1f%% of the step", r.allReduceSeconds, 100 * r.allReduceSeconds / r.stepSeconds))
                print(String(format: "gradient reduced: %.1f MB (fp64); ring lower bound per rank 2(p-1)/p × that = %.1f MB; %.2f GB/s at the lower bound",
                             r.gradientBytes / 1e6, ring / 1e6, ring / r.allReduceSeconds / 1e9))
            }
            (comm as? MPICommunicator)?.finalize()
        }
    }
}
