import ArgumentParser
import DPODistributed
import DPOCore
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

    var parallel: ParallelOptions { ParallelOptions(zeroStage: zeroStage, bucketSizeMB: bucketSizeMB, blockingBuckets: blockingBuckets) }

    func validate() throws {
        if let simulateRanks, simulateRanks < 1 { throw ValidationError("--simulate-ranks must be at least 1") }
        guard zeroStage == 0 || zeroStage == 1 else { throw ValidationError("--zero-stage must be 0 or 1") }
        guard bucketSizeMB > 0 else { throw ValidationError("--bucket-size-mb must be positive") }
    }

    /// MPI when started by mpirun/srun (their environment says so), otherwise one process.
    func communicator() -> Communicator {
        let env = ProcessInfo.processInfo.environment
        let underMPI = env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil
        return underMPI ? MPICommunicator() : SingleProcessCommunicator()
    }

    func applyThreads() {
        let env = ProcessInfo.processInfo.environment
        if let threads {
            setBLASThreads(max(1, threads))
        } else if env["OPENBLAS_NUM_THREADS"] == nil {
            let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "1") ?? 1
            setBLASThreads(max(1, ProcessInfo.processInfo.activeProcessorCount / max(local, 1)))
        }
    }
}

/// Runs a training command on every rank; any error on any rank ends the whole job with
/// `rank R: message` (one process: `error: message`) and a non-zero exit.
func runTraining(_ options: TrainOptions, _ run: RunOptions, command: TrainingArguments.Command,
                 make: @escaping @Sendable (TrainingArguments, Communicator, ParallelOptions) throws -> Trainer) throws {
    if let n = run.simulateRanks, n > 1 {
        // Threads share the cores: one BLAS thread each unless told otherwise.
        setBLASThreads(run.threads ?? 1)
        let args: TrainingArguments
        do { args = try options.resolve(command: command) } catch let error as DPOError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
        try InProcessWorld(size: n).run { comm in
            try train(args: args, comm: comm, command: command, parallel: run.parallel, make: make)
        }
        return
    }
    let comm = run.communicator()
    run.applyThreads()
    do {
        let args = try options.resolve(command: command)
        try train(args: args, comm: comm, command: command, parallel: run.parallel, make: make)
    } catch let error as DPOError {
        if comm.worldSize == 1 {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode.failure
        }
        comm.abort(error.message, code: 1)
    }
    (comm as? MPICommunicator)?.finalize()
}

/// One rank's run. Errors end the whole job: an in-process rank aborts the process.
private func train(args: TrainingArguments, comm: Communicator, command: TrainingArguments.Command,
                   parallel: ParallelOptions, make: (TrainingArguments, Communicator, ParallelOptions) throws -> Trainer) throws {
    do {
        let trainer = try make(args, comm, parallel)
        if comm.isMain {
            note("\(command == .dpo ? "DPO" : "SFT"): \(trainer.objective.exampleCount) examples, \(trainer.totalSteps) steps of " +
                 "\(trainer.globalBatchSize) (\(args.perDeviceTrainBatchSize) per device × \(args.gradientAccumulationSteps) accumulation × \(comm.worldSize) rank(s)), " +
                 "\(trainer.policy.parameterCount) parameters → \(args.outputDir)")
        }
        try trainer.run()
        if comm.isMain { note("done: model in \(args.outputDir), metrics in \(args.outputDir)/metrics.jsonl") }
    } catch let error as DPOError where comm is InProcessCommunicator {
        comm.abort(error.message, code: 1)
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "DPO training (TRL DPOTrainer semantics): one process, or every rank of mpirun.",
        discussion: """
        Options are TRL's DPOConfig names in kebab case; --config reads them from YAML (snake_case) and a flag \
        overrides the file. Writes OUTPUT_DIR/metrics.jsonl, checkpoint-STEP/ directories, eval_report.md and the \
        final model (a Hugging Face directory).
        """)
    @OptionGroup var options: TrainOptions
    @OptionGroup var runOptions: RunOptions
    func run() throws { try runTraining(options, runOptions, command: .dpo, make: Trainer.dpo) }
}

struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning (TRL SFTTrainer semantics): makes the reference DPO starts from.",
        discussion: """
        Data: {"prompt","completion"} (loss on completion tokens by default), {"text"} or {"messages"} rows. \
        Same options, checkpoints and logs as `train`.
        """)
    @OptionGroup var options: TrainOptions
    @OptionGroup var runOptions: RunOptions
    func run() throws { try runTraining(options, runOptions, command: .sft, make: Trainer.sft) }
}
