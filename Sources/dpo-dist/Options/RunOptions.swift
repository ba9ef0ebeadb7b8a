import ArgumentParser
import DPOComm
import DPODistributed
import DPOKernels
import DPOTraining
import Foundation

/// Options of how the job runs, beside the training arguments.
struct RunOptions: ParsableArguments {
    @Option(help: "OpenBLAS threads per rank (default: OPENBLAS_NUM_THREADS, else the cores divided by the ranks on this host).")
    var threads: Int?
    @Option(help: "Run N ranks as threads of this process, without mpirun: the distributed code path for debugging and tests.")
    var simulateRanks: Int?
    @Option(help: "1: shard the optimizer state over the ranks (ZeRO-1: reduce-scatter gradients, AdamW on the shard, all-gather parameters). 0: every rank holds it all.")
    var zeroStage = 0
    @Option(help: "Gradients are all-reduced in buckets of this many MB, each started as soon as backward has finished it.")
    var bucketSizeMB = 25.0

    @Option(help: "true: reduce each gradient bucket with a blocking all-reduce when backward finishes it; false: a non-blocking one progressed between layers. Default: blocking when every rank is on one host.")
    var blockingBuckets: Bool?

    @Option(help: "float64: gradients summed over the ranks in fp64, so the step is the same bits however many ranks there are (with one micro-batch per rank and blocking buckets they travel as fp32 and are summed in fp64 on the way). float32: fp32 sums, half an fp64 all-reduce's bytes, blocking per bucket, for bandwidth-poor clusters; the last bits then depend on the number of ranks.")
    var reduceDtype = "float64"

    var parallel: ParallelOptions {
        ParallelOptions(zeroStage: zeroStage, bucketSizeMB: bucketSizeMB, blockingBuckets: blockingBuckets,
                        reduceDtype: ParallelOptions.ReduceDtype(rawValue: reduceDtype) ?? .float64)
    }

    func validate() throws {
        if let simulateRanks, simulateRanks < 1 { throw ValidationError("--simulate-ranks must be at least 1") }
        guard zeroStage == 0 || zeroStage == 1 else { throw ValidationError("--zero-stage must be 0 or 1") }
        guard bucketSizeMB > 0 else { throw ValidationError("--bucket-size-mb must be positive") }
        guard let dtype = ParallelOptions.ReduceDtype(rawValue: reduceDtype) else {
            throw ValidationError("--reduce-dtype must be float64 or float32, got \(reduceDtype)")
        }
        if dtype == .float32 && zeroStage == 1 {
            throw ValidationError("--reduce-dtype float32 is not available with --zero-stage 1 (its reduce-scatter sums in fp64)")
        }
    }

    /// MPI when started by mpirun/srun (their environment says so), otherwise one process.
    func communicator() -> Communicator {
        let env = ProcessInfo.processInfo.environment
        let underMPI = env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil
        return underMPI ? MPICommunicator() : SingleProcessCommunicator()
    }

    /// Every thread count of the process (OpenBLAS's, oneDNN's OpenMP threads, the element-wise
    /// kernels') from `effectiveThreads`, also when OpenBLAS already read OPENBLAS_NUM_THREADS itself.
    func applyThreads() { setBLASThreads(effectiveThreads) }

    /// The threads each rank's products run on: --threads, else OPENBLAS_NUM_THREADS, else the cores
    /// divided by the ranks on this host.
    var effectiveThreads: Int {
        let env = ProcessInfo.processInfo.environment
        if let threads { return max(1, threads) }
        if let n = env["OPENBLAS_NUM_THREADS"].flatMap(Int.init) { return max(1, n) }
        let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "1") ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(local, 1))
    }
}
