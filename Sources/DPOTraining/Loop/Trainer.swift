import DPOComm
import DPOData
import DPOKernels
import DPOModel
import DPOSupport
import Foundation
import Tokenization

/// The training loop. One per process; every rank runs it with its communicator.
public final class Trainer {
    public let args: TrainingArguments
    public let comm: Communicator
    public let policy: Transformer
    public let objective: TrainingObjective
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    /// config.json of the policy as read, so saved models keep its keys.
    let policyConfigJSON: [String: Any]
    let modelDirectory: String
    /// The base directory, and the adapter `model` names when it is one (see `PolicySource`).
    let policySource: PolicySource
    /// Bytes of the reference model's weights, for the memory plan.
    let referenceBytes: Int

    public internal(set) var globalStep = 0
    /// Names this run in its checkpoints (made at a fresh start, carried through resumes), so that
    /// rotation and resume only ever touch the run's own.
    public internal(set) var runID = ""
    /// A hash of the starting weights (`model`): a checkpoint of another model is refused.
    let startWeights: String
    /// The step of the newest checkpoint this run wrote or resumed from.
    var lastCheckpointStep: Int?
    /// How gradients travel, in words: ranks must agree on it.
    let parallelDescription: String
    /// Whether `sync` keeps an fp64 gradient sum (see `ParallelOptions.keepsFP64GradientSum`).
    let keepsFP64GradientSum: Bool
    var tokensSeen = 0.0
    var window = LogWindow()
    /// Called on rank 0 for each metrics line (tests read them).
    public var onLog: ((MetricsLine) -> Void)?
    public var printProgress = true
    /// A step slower than this (seconds) says on rank 0 how many of its micro-batches are done, after
    /// each of them, so that a long step (a 3B model on a CPU node: most of an hour) shows it is moving.
    var slowStepNoteSeconds = 60.0
    var slowStepNote: (String) -> Void = { Console.note($0) }
    /// Ends `run` after this step (and its checkpoint) as if the job were killed there: for tests of resume.
    public var interruptAfterStep: Int?
    /// Bytes this rank may use; nil: the machine's memory divided among the ranks on it.
    public var memoryBudget: Int?
    /// The same for the check `make` runs before loading (tests).
    nonisolated(unsafe) static var stateMemoryBudget: Int?
    /// Whether this rank was asked to stop (a signal, see `StopSignals`). Read after every step; the
    /// ranks stop together if any was asked.
    public var stopRequested: () -> Bool = { StopSignals.requested != nil }

    /// How `run` ended.
    public enum Outcome: Equatable {
        /// Every step ran, the final model and eval are written.
        case finished
        /// Stopped after `step` with a checkpoint of it (asked to, or `interruptAfterStep`).
        case interrupted(step: Int)
    }

    /// What the optimizer updates and the checkpoints save moments for: the policy's parameters.
    public let trainable: ParameterSet
    /// How gradients are summed over micro-batches and ranks (all-reduce buckets, or ZeRO-1).
    public let sync: GradientSync
    /// Seconds the last step waited for gradient reductions that backward did not hide.
    public var lastCommunicationWait: Double { sync.lastWait }
    /// Seconds spent in blocking gradient reductions and parameter gathers since the start.
    public var blockingSeconds: Double { sync.blockingSeconds }
    /// The part of `blockingSeconds` spent inside backward.
    public var blockingSecondsInBackward: Double { sync.blockingSecondsInBackward }
    /// Seconds in the AdamW update since the trainer was made (for `dpo-dist bench`).
    public private(set) var optimizerSeconds = 0.0

    package init(args: TrainingArguments, comm: Communicator, policy: Transformer, configJSON: [String: Any],
                 objective: TrainingObjective, parallel: ParallelOptions) throws {
        self.args = args
        self.comm = comm
        self.policy = policy
        self.objective = objective
        policyConfigJSON = configJSON
        modelDirectory = args.model
        policySource = try PolicySource(args)
        referenceBytes = try Self.referenceBytes(args: args, source: policySource, adapterParameters: policy.adapters?.parameters.count)
        var weights = FNV1a()
        policy.weightsFingerprint(into: &weights)
        if let adapters = policy.adapters { weights.add(words: adapters.parameters.values.pointer, count: adapters.parameters.count) }
        startWeights = String(weights.value, radix: 16)
        keepsFP64GradientSum = Self.keepsFP64GradientSum(parallel, args, comm)
        parallelDescription = "zero_stage \(parallel.zeroStage), bucket_size_mb \(parallel.bucketSizeMB), blocking_buckets \(parallel.blockingBuckets.map { "\($0)" } ?? "auto"), reduce_dtype \(parallel.reduceDtype.rawValue)"
        policy.enableGradients(checkpointing: args.gradientCheckpointing)
        trainable = policy.trainable
        sync = parallel.makeSync(comm: comm, count: trainable.count, microBatchesPerRank: args.gradientAccumulationSteps)
        optimizer = AdamW(parameters: trainable, shard: sync.shard, beta1: args.adamBeta1, beta2: args.adamBeta2,
                          eps: args.adamEpsilon, weightDecay: args.weightDecay)
        let globalBatch = args.perDeviceTrainBatchSize * args.gradientAccumulationSteps * comm.worldSize
        stepsPerEpoch = max(1, (objective.exampleCount + globalBatch - 1) / globalBatch)
        totalSteps = args.maxSteps > 0 ? args.maxSteps : max(1, Int((args.numTrainEpochs * Double(stepsPerEpoch)).rounded(.up)))
        let warmup = args.warmupSteps > 0 ? args.warmupSteps : Int((args.warmupRatio * Double(totalSteps)).rounded(.up))
        schedule = LearningRateSchedule(kind: try args.schedule, peak: args.learningRate, warmupSteps: warmup, totalSteps: totalSteps)
    }

    /// A DPO run (see `DPOObjective`).
    public static func dpo(args: TrainingArguments, comm: Communicator, parallel: ParallelOptions = ParallelOptions()) throws -> Trainer {
        try make(args: args, comm: comm, parallel: parallel, objective: DPOObjective.init)
    }

    /// An SFT run, which makes the reference DPO starts from (see `SFTObjective`).
    public static func sft(args: TrainingArguments, comm: Communicator, parallel: ParallelOptions = ParallelOptions()) throws -> Trainer {
        try make(args: args, comm: comm, parallel: parallel, objective: SFTObjective.init)
    }

    /// Loads the policy and tokenizer from `model` and builds the run around the objective made from them.
    static func make(args: TrainingArguments, comm: Communicator, parallel: ParallelOptions,
                     objective: (TrainingArguments, Communicator, Transformer, Tokenizer) throws -> TrainingObjective) throws -> Trainer {
        let source = try PolicySource(args)
        let state = try statePlan(args: args, source: source, ranksOnHost: comm.ranksOnThisHost,
                                  fp64GradientSum: keepsFP64GradientSum(parallel, args, comm), available: stateMemoryBudget)
        guard state.fits else {
            throw DPOError.file(source.baseDirectory, "the weights and the trained state alone need more memory than this rank has, before any activation: \(state.line); train LoRA adapters (use_peft), run fewer ranks on a host, or use a machine with more memory")
        }
        let loaded = try loadPolicy(args, source: source)
        let tokenizer = try Tokenizer(directory: source.tokenizerDirectory)
        return try Trainer(args: args, comm: comm, policy: loaded.model, configJSON: loaded.configJSON,
                           objective: try objective(args, comm, loaded.model, tokenizer), parallel: parallel)
    }

    public var globalBatchSize: Int { args.perDeviceTrainBatchSize * args.gradientAccumulationSteps * comm.worldSize }

    /// Examples of global batch `step` in the epoch's order (the last batch of an epoch may be short).
    package func globalBatch(step: Int) -> [Int] {
        let epoch = step / stepsPerEpoch, inEpoch = step % stepsPerEpoch
        let order = EpochOrder(count: objective.exampleCount, seed: args.seed, shuffle: args.shuffle).permutation(epoch: epoch)
        let start = min(inEpoch * globalBatchSize, order.count)
        return Array(order[start..<min(start + globalBatchSize, order.count)])
    }

    /// This rank's micro-batches of a global batch: the per-device batches of `balancedMicroBatches`
    /// (the same on any number of ranks) dealt round-robin to the ranks.
    func microBatches(of batch: [Int]) -> [[Int]] {
        let all = balancedMicroBatches(batch, size: args.perDeviceTrainBatchSize, tokens: objective.tokens(of:))
        return (0..<args.gradientAccumulationSteps).map { j in
            let index = j * comm.worldSize + comm.rank
            return index < all.count ? all[index] : []
        }
    }

    public struct StepReport {
        public var sums: StepSums
        public var gradNorm: Double
        public var learningRate: Double
        public var seconds: Double
    }

    /// One optimizer step: forward/backward over this rank's micro-batches, gradients summed over
    /// micro-batches and ranks (see `GradientSync` for the numeric semantics), global-norm clipping,
    /// AdamW on this rank's shard, the update shared with every rank.
    public func step() throws -> StepReport {
        let started = Date()
        var sums = StepSums()
        let batch = globalBatch(step: globalStep)
        let normalizer = batch.reduce(0) { $0 + objective.normalizerWeight(of: $1) }
        let micros = microBatches(of: batch).filter { !$0.isEmpty }
        var done = 0
        try sync.sumGradients(of: micros, into: trainable, source: policy) { micro in
            try objective.trainMicroBatch(micro, normalizer: normalizer, sums: &sums)
            done += 1
            let elapsed = Date().timeIntervalSince(started)
            if comm.isMain, printProgress, elapsed >= slowStepNoteSeconds, done < micros.count {
                slowStepNote("step \(globalStep + 1)/\(totalSteps): micro-batch \(done) of \(micros.count) on this rank done after \(formatDuration(elapsed))\n")
            }
        }
        sums.reduce(over: comm)
        guard sums[.loss].isFinite else {
            throw DPOError("step \(globalStep + 1): the loss is \(sums[.loss]); training stopped (\(checkpointNote))")
        }
        // The norm over the whole gradient: each rank's shard (everything, without ZeRO) summed.
        let grads = trainable.gradients!, shard = sync.shard
        let norm = sync.sumOverShards(sumOfSquares(grads.pointer, range: shard)).squareRoot()
        guard norm.isFinite else {
            throw DPOError("step \(globalStep + 1): the gradient norm is \(norm); training stopped (\(checkpointNote))")
        }
        // Clipping scales the gradient inside the update (the same bits as scaling it first).
        let clip: Float = args.maxGradNorm > 0 ? Float(min(1, args.maxGradNorm / (norm + 1e-6))) : 1
        let lr = schedule.rate(atStep: globalStep)
        let optimizerStart = DispatchTime.now().uptimeNanoseconds
        optimizer.beginStep()
        optimizer.update(trainable, lr: Float(lr), gradScale: clip)
        optimizerSeconds += Double(DispatchTime.now().uptimeNanoseconds - optimizerStart) / 1e9
        sync.gatherShards(trainable.values)
        globalStep += 1
        tokensSeen += sums[.tokens]
        return StepReport(sums: sums, gradNorm: norm, learningRate: lr, seconds: Date().timeIntervalSince(started))
    }

    /// Runs to `totalSteps`, logging every `logging_steps`, evaluating every `eval_steps` and at the
    /// end, saving checkpoints every `save_steps`, and writes the final model to output_dir. Asked to
    /// stop (`stopRequested`), every rank finishes the step under way, rank 0 writes a checkpoint of
    /// it, and `run` returns `.interrupted`: a resume from that checkpoint continues bit for bit.
    @discardableResult
    public func run() throws -> Outcome {
        let out = args.outputDir
        try checkInputsAreSafe()
        try checkAdapterDropout()
        try checkRanksAgree()
        try checkMemory()
        if comm.isMain { try prepareOutputDirectory() }
        comm.barrier()
        runID = String(decoding: comm.broadcast(Array(UUID().uuidString.utf8)), as: UTF8.self)
        if let resume = args.resumeFromCheckpoint { try resumeFrom(resume) }
        try objective.prepare(outputDir: out)
        reserveActivations()
        let metrics = comm.isMain ? try MetricsFile(path: out + "/metrics.jsonl", truncateAfterStep: globalStep) : nil
        let progress = ProgressLine(total: totalSteps, startStep: globalStep, enabled: comm.isMain && printProgress)
        while globalStep < totalSteps {
            let report = try step()
            window.add(report, metrics: objective.metrics(report.sums, prefix: ""))
            if globalStep % args.loggingSteps == 0 || globalStep == totalSteps {
                let line = window.line(step: globalStep, epoch: Double(globalStep) / Double(stepsPerEpoch), tokensSeen: tokensSeen)
                window = LogWindow()
                if comm.isMain {
                    try metrics?.append(line)
                    onLog?(line)
                }
                progress.update(step: globalStep, line: line)
            }
            if let every = args.evalSteps, globalStep % every == 0, globalStep < totalSteps {
                try evaluateAndLog(metrics: metrics, progress: progress)
            }
            let saved = args.saveSteps.map { globalStep % $0 == 0 } ?? false
            if saved, globalStep < totalSteps { try saveCheckpoint() }
            if globalStep == interruptAfterStep { return .interrupted(step: globalStep) }
            if globalStep < totalSteps, anyRankAskedToStop() {
                if !saved { try saveCheckpoint() }
                progress.finish()
                return .interrupted(step: globalStep)
            }
        }
        progress.finish()
        // The model first: a report that cannot be written must not cost the trained weights.
        if comm.isMain { try savePolicy(to: out, dtype: try args.savedDType.safetensors) }
        let finalEval = try evaluateAndLog(metrics: metrics, progress: progress)
        if comm.isMain { try objective.writeReport(outputDir: out, metrics: finalEval) }
        comm.barrier()
        return .finished
    }

    /// What one rank holds while it trains, in bytes: the plan `checkMemory` compares with the memory
    /// this rank has, and `train` prints at its start.
    public struct MemoryPlan {
        /// (what, bytes), in the order printed; their sum is `total`.
        public var items: [(String, Int)]
        public var total: Int { items.reduce(0) { $0 + $1.1 } }
        /// The memory this rank has: the host's physical memory over its ranks (or a test's budget).
        public var available: Int
        public var physical: Int, ranksOnHost: Int

        init(items: [(String, Int)], available budget: Int?, ranksOnHost: Int,
             largestBatch: (tokens: Int, longestSequence: Int, longestExample: String)) {
            self.items = items
            physical = Int(clamping: ProcessInfo.processInfo.physicalMemory)
            self.ranksOnHost = max(ranksOnHost, 1)
            available = budget ?? physical / self.ranksOnHost
            self.largestBatch = largestBatch
        }
        /// The largest micro-batch the activations are sized for, and where its longest example is.
        public var largestBatch: (tokens: Int, longestSequence: Int, longestExample: String)

        public var fits: Bool { total <= available }

        static func gb(_ bytes: Int) -> String {
            let b = Double(bytes)
            return b >= 1e9 ? String(format: "%.2f GB", b / 1e9) : b >= 1e6 ? String(format: "%.1f MB", b / 1e6)
                : String(format: "%.0f kB", b / 1e3)
        }

        /// One line: every item, the total and what is available.
        public var line: String {
            items.map { "\($0.0) \(Self.gb($0.1))" }.joined(separator: ", ") +
                "; total \(Self.gb(total)) of the \(Self.gb(available)) this rank has (\(Self.gb(physical)) on this host for \(ranksOnHost) rank(s))"
        }
    }

    /// The memory plan of this run on this rank. Trainable state per parameter: fp32 gradients, their
    /// fp64 sum over micro-batches and ranks, AdamW's two fp32 moments, and a frozen reference (its
    /// BF16 decoder linears at 2 bytes a weight, the rest in fp32; with LoRA: the adapters are what
    /// is trained, the base's BF16 linears stay in bf16 too, and the reference shares the base's
    /// weights, holding at most a copy of the starting adapter);
    /// activations for the largest micro-batch at its longest sequence (all layers, or with
    /// gradient_checkpointing each layer's input and one layer), and the reference model's (one layer).
    public func memoryPlan() -> MemoryPlan {
        let batch = objective.largestMicroBatch()
        let activations = policy.activationBytes(tokens: batch.tokens, longestSequence: batch.longestSequence,
                                                 scoredRows: batch.tokens)
        let referenceActivations = objective.referenceActivationBytes(tokens: batch.tokens, longestSequence: batch.longestSequence)
        let state = Self.stateItems(weights: policy.weightBytes, lora: policy.adapters != nil, trainable: trainable.count,
                                    fp64GradientSum: keepsFP64GradientSum,
                                    reference: referenceBytes)
        return MemoryPlan(items: state + [("activations (\(batch.tokens) tokens)", activations)]
                                 + (referenceActivations > 0 ? [("reference activations", referenceActivations)] : []),
                          available: memoryBudget, ranksOnHost: comm.ranksOnThisHost, largestBatch: batch)
    }

    /// Whether this rank's run keeps an fp64 gradient sum (`ParallelOptions.keepsFP64GradientSum`).
    static func keepsFP64GradientSum(_ parallel: ParallelOptions, _ args: TrainingArguments, _ comm: Communicator) -> Bool {
        parallel.keepsFP64GradientSum(ranks: comm.worldSize, microBatchesPerRank: args.gradientAccumulationSteps,
                                      allRanksOnOneHost: comm.allRanksOnOneHost)
    }

    /// The plan's items for the weights and the trained state (see `memoryPlan`).
    static func stateItems(weights: (fp32: Int, bf16: Int), lora: Bool, trainable t: Int, fp64GradientSum: Bool,
                           reference: Int) -> [(String, Int)] {
        var items: [(String, Int)] = [("parameters", weights.fp32)]
        if weights.bf16 > 0 { items.append(("frozen bf16 weights (mapped from the files)", weights.bf16)) }
        if lora { items.append(("LoRA adapters", 4 * t)) }
        items.append(("gradients", 4 * t))
        if fp64GradientSum { items.append(("gradient sum (fp64)", 8 * t)) }
        return items + [("AdamW moments", 8 * t), ("reference", reference)]
    }

    /// What the reference's weights take (see `memoryPlan`), from the config and safetensors headers;
    /// `adapterParameters`: the policy's LoRA adapter size, nil without LoRA.
    static func referenceBytes(args: TrainingArguments, source: PolicySource, adapterParameters: Int?) throws -> Int {
        if let adapterParameters, args.refModel == nil {
            return source.adapterDirectory != nil ? 4 * adapterParameters : 0
        }
        let directory = try AdapterDirectory.configAndTokenizerDirectories(args.refModel ?? args.model).config
        let bytes = try ModelDirectory.weightBytes(directory, frozen: true)
        return bytes.fp32 + bytes.bf16
    }

    /// The weights and trained state of a run on this rank, from config.json and the safetensors
    /// headers alone (no weight read): the plan without activations, which are known once the data
    /// is tokenized. `make` refuses a run whose state alone does not fit before it loads anything,
    /// so a model too large for the machine is named, with the sizes, instead of exhausting memory
    /// while it loads.
    static func statePlan(args: TrainingArguments, source: PolicySource, ranksOnHost: Int, fp64GradientSum: Bool,
                          available: Int? = nil) throws -> MemoryPlan {
        let (config, _) = try ModelDirectory.loadConfig(source.baseDirectory)
        let layout = ParameterLayout(config: config)
        // The adapters made once to count them (and check their targets) before the base is read.
        let adapters = try source.lora.map { try LoRAAdapters(layout: layout, config: config, settings: $0).parameters.count }
        let reference = try referenceBytes(args: args, source: source, adapterParameters: adapters)
        let items = stateItems(weights: try ModelDirectory.weightBytes(source.baseDirectory, frozen: source.lora != nil),
                               lora: adapters != nil, trainable: adapters ?? layout.count, fp64GradientSum: fp64GradientSum,
                               reference: reference)
        return MemoryPlan(items: items, available: available, ranksOnHost: ranksOnHost, largestBatch: (0, 0, ""))
    }

    /// The largest micro-batch's activations and the parameter state must fit this rank's memory: a
    /// very long row (with max_length: null) is refused here, naming it, with the plan, not hours into
    /// the run.
    func checkMemory() throws {
        let plan = memoryPlan()
        guard !plan.fits else { return }
        let batch = plan.largestBatch
        throw DPOError("\(batch.longestExample): its \(batch.longestSequence) tokens make the largest micro-batch \(batch.tokens) tokens, and the run needs more memory than this rank has: \(plan.line); set max_length, lower the per-device batch size or turn on gradient_checkpointing")
    }

    /// Allocates the activations of the plan's largest micro-batch once, after the precompute (whose
    /// reference is gone by then) and before the first step: a step whose batch is the largest so far
    /// would otherwise free and allocate them again, and fault the new pages in, inside the step.
    public func reserveActivations() {
        let batch = objective.largestMicroBatch()
        guard batch.tokens > 0 else { return }
        policy.reserve(tokens: batch.tokens, longestSequence: batch.longestSequence, scoredRows: batch.tokens)
        objective.reserveReferenceActivations(tokens: batch.tokens, longestSequence: batch.longestSequence)
    }

    /// Where a stopped run can go on from, for error messages.
    var checkpointNote: String {
        lastCheckpointStep.map { "the last checkpoint is intact: checkpoint-\($0)" } ?? "no checkpoint was written yet"
    }

    /// Whether any rank was asked to stop: every rank calls it after every step, so all stop together.
    func anyRankAskedToStop() -> Bool {
        var asked = [stopRequested() ? 1.0 : 0.0]
        if comm.worldSize > 1 { asked.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: 1) } }
        return asked[0] > 0
    }

    /// Every rank must train the same thing: its arguments, data and starting weights are compared
    /// with rank 0's. The outcome is reduced, so on a mismatch every rank stops (none is left waiting)
    /// and the rank that differs says what.
    func checkRanksAgree() throws {
        guard comm.worldSize > 1 else { return }
        let parts: [(String, String)] = [
            ("training arguments", args.yaml),
            ("run options (--zero-stage, --bucket-size-mb, --blocking-buckets, --reduce-dtype)", parallelDescription),
            ("training data (train_file contents or tokenization)", String(objective.fingerprint, radix: 16)),
            ("eval data (eval_file contents or tokenization)", String(objective.evalFingerprint, radix: 16)),
            ("model weights", startWeights),
        ]
        var differing: [String] = []
        for (name, value) in parts where comm.broadcast(Array(value.utf8)) != Array(value.utf8) {
            differing.append(name)
        }
        var flag = [Double(differing.isEmpty ? 0 : 1)]
        flag.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: 1) }
        if !differing.isEmpty {
            throw DPOError("rank \(comm.rank) differs from rank 0 in its \(differing.joined(separator: " and ")): start every rank with the same files and options")
        }
        if flag[0] > 0 {
            throw DPOError("rank \(comm.rank): \(Int(flag[0])) other rank(s) differ from rank 0; stopping")
        }
    }

    @discardableResult
    func evaluateAndLog(metrics: MetricsFile?, progress: ProgressLine) throws -> [(String, Double)] {
        guard let sums = try objective.evaluate() else { return [] }
        var line = MetricsLine()
        line.add("step", globalStep)
        line.add("epoch", Double(globalStep) / Double(stepsPerEpoch))
        line.add("eval_loss", sums[.loss])
        for (k, v) in objective.metrics(sums, prefix: "eval_") { line.add(k, v) }
        if comm.isMain {
            try metrics?.append(line)
            onLog?(line)
        }
        progress.note(line)
        return line.fields.compactMap { k, v in (v as? Double).map { (k, $0) } }.filter { $0.0.hasPrefix("eval_") }
    }
}
