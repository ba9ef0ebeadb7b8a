import ArgumentParser
import DPOComm
import DPOData
import DPODistributed
import DPOKernels
import DPOModel
import DPOSupport
import DPOTraining
import Foundation

/// Runs a training command on every rank; any error on any rank ends the whole job with
/// `rank R: message` (one process: `error: message`) and a non-zero exit.
func runTraining(_ options: TrainOptions, _ run: RunOptions, command: TrainingArguments.Command,
                 make: @escaping @Sendable (TrainingArguments, Communicator, ParallelOptions) throws -> Trainer) throws {
    let parallel = run.parallel
    // A signal now asks the run to stop after the step under way, with a checkpoint.
    StopSignals.install()
    if let n = run.simulateRanks, n > 1 {
        // Threads share the cores: one BLAS thread each unless told otherwise.
        setBLASThreads(run.threads ?? 1)
        try runReportingErrors {
            let args = try options.resolve(command: command, notes: true)
            let threads = run.threads ?? 1
            try InProcessWorld(size: n).run { comm in
                try train(args: args, comm: comm, command: command, parallel: parallel, threads: threads, make: make)
            }
        }
        return
    }
    let comm = run.communicator()
    run.applyThreads()
    try runReportingErrors {
        do {
            let args = try options.resolve(command: command, notes: comm.isMain)
            try train(args: args, comm: comm, command: command, parallel: parallel, threads: run.effectiveThreads, make: make)
        } catch let error as DPOError where comm.worldSize > 1 {
            comm.abort(error.message, code: 1)
        }
        (comm as? MPICommunicator)?.finalize()
    }
}

/// One rank's run. Errors end the whole job: an in-process rank aborts the process.
private func train(args: TrainingArguments, comm: Communicator, command: TrainingArguments.Command,
                   parallel: ParallelOptions, threads: Int,
                   make: (TrainingArguments, Communicator, ParallelOptions) throws -> Trainer) throws {
    do {
        let trainer = try make(args, comm, parallel)
        if comm.isMain {
            note("\(command == .dpo ? "DPO" : "SFT"): \(trainer.objective.exampleCount) examples, \(trainer.totalSteps) steps of " +
                 "\(trainer.globalBatchSize) (\(args.perDeviceTrainBatchSize) per device × \(args.gradientAccumulationSteps) accumulation × \(comm.worldSize) rank(s)), " +
                 "\(trainer.policy.parameterCount) parameters → \(args.outputDir)")
            if AdapterDirectory.isAdapter(args.model), args.usePeft {
                note("note: \(args.model) is a PEFT adapter: its adapter_config.json sets r, lora_alpha, target_modules and use_rslora; use_peft and the lora_* options are not used")
            }
            if let lora = trainer.policy.adapters {
                let s = lora.settings
                note("LoRA: r \(s.rank), lora_alpha \(s.alpha)\(s.rslora ? ", rsLoRA" : "") (scaling \(lora.scaling)) on \(lora.targetModules.joined(separator: ", ")): \(lora.parameters.count) parameters trained, the base frozen; the reference is \(args.refModel ?? (AdapterDirectory.isAdapter(args.model) ? "the starting adapter" : "the base with the adapters off"))")
            }
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let products = args.bf16 ? "bf16 through oneDNN (\(OneDNNBF16.cpuISA))" : "fp32 through OpenBLAS (\(BLASCore.name) kernels)"
            note("layout: \(comm.worldSize) rank(s) × \(threads) thread(s) each, \(comm.ranksOnThisHost) on this host of \(cores) cores; products \(products)")
            if comm.worldSize > 1 {
                note("gradients: " + parallel.gradientPath(microBatchesPerRank: args.gradientAccumulationSteps,
                                                           allRanksOnOneHost: comm.allRanksOnOneHost))
            }
            note("memory per rank: \(trainer.memoryPlan().line)")
            var files: [(path: String, data: PreferenceDataset)] = []
            if let dpo = trainer.objective as? DPOObjective {
                files.append((args.trainFile, dpo.train))
                if let evalFile = args.evalFile, let eval = dpo.eval { files.append((evalFile, eval)) }
            }
            for warning in dataWarnings(files, maxLength: args.maxLength,
                                        maxPositionEmbeddings: trainer.policy.config.maxPositionEmbeddings) { note(warning) }
        }
        switch try trainer.run() {
        case .finished:
            if comm.isMain {
                if let dnnl = trainer.policy.matmul as? OneDNNBF16 { note("bf16 products ran on oneDNN's \(dnnl.kernelNames.joined(separator: ", "))") }
                note("done: model in \(args.outputDir), metrics in \(args.outputDir)/metrics.jsonl")
            }
        case .interrupted(let step):
            let signal = StopSignals.requested.map { " by \(StopSignals.name($0))" } ?? ""
            if comm.isMain {
                note("interrupted\(signal) at step \(step): checkpoint in \(args.outputDir)/checkpoint-\(step); resume with --resume-from-checkpoint auto")
            }
        }
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
        overrides the file. TRL keys that change nothing here (fp16: false, report_to: none, ...) are noted on \
        stderr and ignored; values dpo-dist cannot follow are refused with what to use instead. Writes OUTPUT_DIR/metrics.jsonl, checkpoint-STEP/ directories, eval_report.md and the \
        final model (a Hugging Face directory). Relative paths, on the command line and inside the --config file \
        alike, resolve against the current directory, as TRL's do (not against the YAML file's folder); launch/mpi \
        runs the ranks in the directory it was called from.
        """)
    @OptionGroup var options: TrainOptions
    @OptionGroup var runOptions: RunOptions
    func run() throws { try runTraining(options, runOptions, command: .dpo, make: { try Trainer.dpo(args: $0, comm: $1, parallel: $2) }) }
}
