import Foundation

/// DPO training with TRL 1.16's numbers (see Tests/DPOCoreTests/Fixtures/trl/SEMANTICS.md):
/// - sequence log-prob = the sum of the completion tokens' log-probs (fp32 compute, float64 sums);
/// - the objective of an optimizer step is the mean of the loss over the pairs of the global batch
///   (per_device_train_batch_size × gradient_accumulation_steps × world size); each micro-batch's
///   loss is weighted by its share of those pairs, so N ranks give the numbers of one rank with N
///   times the accumulation;
/// - gradients summed over ranks, global-norm clipping (norm measured before clipping), AdamW with
///   bias correction and decoupled weight decay (not on biases and norm weights), a LambdaLR schedule.
public final class DPOTrainer {
    public let args: TrainingArguments
    public let comm: Communicator
    public let policy: Transformer
    /// The frozen reference; nil when its log-probs are precomputed or the loss needs none.
    public let reference: Transformer?
    public let tokenizer: Tokenizer
    public let train: PreferenceDataset
    public let eval: PreferenceDataset?
    public let loss: PreferenceLoss
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    /// config.json of the policy as read, so saved models keep its keys.
    let policyConfigJSON: [String: Any]
    let modelDirectory: String
    /// Precomputed reference log-probs per train pair (chosen, rejected), when precompute_ref_log_probs.
    var referenceCache: [(Double, Double)]?

    public internal(set) var globalStep = 0
    var tokensSeen = 0.0
    var window = LogWindow()
    /// Called on rank 0 for each metrics line (tests read them; the CLI prints them).
    public var onLog: ((MetricsLine) -> Void)?
    public var printProgress = true
    /// Ends `run` after this step's checkpoint as if the job were killed there (for tests of resume).
    public var interruptAfterStep: Int?

    public init(args: TrainingArguments, comm: Communicator) throws {
        self.args = args
        self.comm = comm
        modelDirectory = args.model
        let loaded = try ModelDirectory.load(args.model)
        policy = loaded.model
        policyConfigJSON = loaded.configJSON
        tokenizer = try Tokenizer(directory: args.model)
        guard tokenizer.eosToken != nil else {
            throw DPOError.file(args.model, "the tokenizer names no eos_token (tokenizer_config.json); DPO appends it to completions")
        }
        train = try PreferenceDataset.load(path: args.trainFile, tokenizer: tokenizer, maxLength: args.maxLength,
                                           maxPromptLength: args.maxPromptLength, skipInvalid: args.skipInvalidRows)
        if let evalFile = args.evalFile {
            eval = try PreferenceDataset.load(path: evalFile, tokenizer: tokenizer, maxLength: args.maxLength,
                                              maxPromptLength: args.maxPromptLength, skipInvalid: args.skipInvalidRows)
        } else {
            eval = nil
        }
        let types = try args.lossType.map { name -> PreferenceLossType in
            guard let t = PreferenceLossType(rawValue: name) else { throw DPOError("loss_type: unknown loss \"\(name)\"") }
            return t
        }
        loss = PreferenceLoss(types: types, weights: args.lossWeights, beta: args.beta, labelSmoothing: args.labelSmoothing,
                              simpoGamma: args.simpoGamma, orpoAlpha: args.orpoAlpha, discopopTau: args.discopopTau)
        if loss.needsReference {
            if let refPath = args.refModel {
                let ref = try ModelDirectory.load(refPath).model
                guard ref.config.vocabSize == policy.config.vocabSize else {
                    throw DPOError.file(refPath, "reference vocabulary \(ref.config.vocabSize) differs from the policy's \(policy.config.vocabSize)")
                }
                reference = ref
            } else {
                // A frozen copy of the starting policy.
                let copy = FloatBuffer(count: policy.parameterCount, zeroed: false)
                copy.copy(from: policy.params)
                reference = Transformer(config: policy.config, params: copy)
            }
        } else {
            reference = nil
        }
        policy.enableGradients()
        optimizer = AdamW(layout: policy.layout, beta1: args.adamBeta1, beta2: args.adamBeta2, eps: args.adamEpsilon,
                          weightDecay: args.weightDecay)

        let globalBatch = args.perDeviceTrainBatchSize * args.gradientAccumulationSteps * comm.worldSize
        stepsPerEpoch = max(1, (train.count + globalBatch - 1) / globalBatch)
        totalSteps = args.maxSteps > 0 ? args.maxSteps : max(1, Int((args.numTrainEpochs * Double(stepsPerEpoch)).rounded(.up)))
        let warmup = args.warmupSteps > 0 ? args.warmupSteps : Int((args.warmupRatio * Double(totalSteps)).rounded(.up))
        guard let kind = LearningRateSchedule.Kind(rawValue: args.lrSchedulerType) else {
            throw DPOError("lr_scheduler_type: unknown schedule \"\(args.lrSchedulerType)\"")
        }
        schedule = LearningRateSchedule(kind: kind, peak: args.learningRate, warmupSteps: warmup, totalSteps: totalSteps)
    }

    public var globalBatchPairs: Int { args.perDeviceTrainBatchSize * args.gradientAccumulationSteps * comm.worldSize }

    /// The pairs (indices into `train`) of one optimizer step, as micro-batches of this rank: global
    /// batch `step` of the epoch order, cut into per-device batches dealt round-robin to the ranks.
    func microBatches(step: Int) -> [[Int]] {
        let epoch = step / stepsPerEpoch, inEpoch = step % stepsPerEpoch
        let order = EpochOrder(count: train.count, seed: args.seed, shuffle: args.shuffle).permutation(epoch: epoch)
        let start = inEpoch * globalBatchPairs
        let pairs = Array(order[min(start, order.count)..<min(start + globalBatchPairs, order.count)])
        let b = args.perDeviceTrainBatchSize
        var mine: [[Int]] = []
        for j in 0..<args.gradientAccumulationSteps {
            let index = j * comm.worldSize + comm.rank
            let lo = min(index * b, pairs.count), hi = min(lo + b, pairs.count)
            mine.append(Array(pairs[lo..<hi]))
        }
        return mine
    }

    /// Pairs in global batch `step` (the last one of an epoch may be short).
    func pairsInStep(_ step: Int) -> Int {
        let inEpoch = step % stepsPerEpoch
        return min(globalBatchPairs, train.count - inEpoch * globalBatchPairs)
    }

    // MARK: - One micro-batch

    struct MicroResult {
        var pairs: [PairLogps]
        var logitSums: [(chosen: Double, rejected: Double)]
        var tokens: Int
    }

    /// Policy (and reference) forward over a set of pairs; per-pair summed log-probs and logit sums.
    func forwardPairs(_ indices: [Int], data: PreferenceDataset, batch: inout TokenBatch,
                      cache: [(Double, Double)]?) -> MicroResult {
        batch.removeAll()
        for i in indices { PairScorer.append(data.pairs[i], to: &batch) }
        policy.forward(batch)
        let sums = PairScorer.sequenceSums(model: policy, batch: batch)
        var logitSums = [Double](repeating: 0, count: batch.sequenceCount)
        let z = policy.scoredLogitSums, V = Double(policy.config.vocabSize)
        for (i, s) in batch.scoredSequence.enumerated() { logitSums[Int(s)] += Double(z[i]) / V }
        var refSums = [Double](repeating: 0, count: batch.sequenceCount)
        if let cache {
            for (k, i) in indices.enumerated() { (refSums[2 * k], refSums[2 * k + 1]) = cache[i] }
        } else if let reference {
            reference.forward(batch)
            refSums = PairScorer.sequenceSums(model: reference, batch: batch)
        }
        var pairs: [PairLogps] = []
        var logits: [(Double, Double)] = []
        for (k, i) in indices.enumerated() {
            let p = data.pairs[i], from = max(p.promptLength, 1)
            pairs.append(PairLogps(policyChosen: sums[2 * k], policyRejected: sums[2 * k + 1],
                                   referenceChosen: refSums[2 * k], referenceRejected: refSums[2 * k + 1],
                                   chosenTokens: p.chosen.count - from, rejectedTokens: p.rejected.count - from))
            logits.append((logitSums[2 * k], logitSums[2 * k + 1]))
        }
        return MicroResult(pairs: pairs, logitSums: logits, tokens: batch.tokenCount)
    }

    // MARK: - Training

    public struct StepReport {
        public var sums: StepSums
        public var gradNorm: Double
        public var learningRate: Double
        public var seconds: Double
    }

    /// One optimizer step: forward/backward over this rank's micro-batches, gradients summed over
    /// ranks, clipping, AdamW.
    public func step() throws -> StepReport {
        let started = Date()
        let grads = policy.grads!
        grads.zero()
        var sums = StepSums()
        var batch = TokenBatch()
        let globalPairs = Double(pairsInStep(globalStep))
        for indices in microBatches(step: globalStep) where !indices.isEmpty {
            let micro = forwardPairs(indices, data: train, batch: &batch, cache: referenceCache)
            let (microLoss, dc, dr) = loss.evaluate(micro.pairs)
            let weight = Double(indices.count) / globalPairs
            // Every scored token of a sequence gets its sequence's dJ/dlogp.
            var dlogp = [Float](repeating: 0, count: batch.scoredCount)
            for (i, s) in batch.scoredSequence.enumerated() {
                let pair = Int(s) / 2
                dlogp[i] = Float(weight * (Int(s) % 2 == 0 ? dc[pair] : dr[pair]))
            }
            dlogp.withUnsafeBufferPointer { policy.backward(batch, dlogp: $0.baseAddress!) }
            sums.add(pairs: micro.pairs, microLoss: microLoss, weight: weight, beta: args.beta,
                     logitSums: micro.logitSums, sequenceTokens: micro.tokens)
        }
        comm.allReduceSum(grads.pointer, count: grads.count)
        sums.reduce(over: comm)
        guard sums[.loss].isFinite else {
            throw DPOError("step \(globalStep + 1): the loss is \(sums[.loss]); training stopped (the last checkpoint is intact)")
        }
        let norm = sumOfSquares(grads.pointer, range: 0..<grads.count).squareRoot()
        guard norm.isFinite else {
            throw DPOError("step \(globalStep + 1): the gradient norm is \(norm); training stopped (the last checkpoint is intact)")
        }
        if args.maxGradNorm > 0 {
            let factor = min(1, args.maxGradNorm / (norm + 1e-6))
            if factor < 1 { scaleInPlace(grads.pointer, grads.count, Float(factor)) }
        }
        let lr = schedule.rate(atStep: globalStep)
        optimizer.beginStep()
        optimizer.update(params: policy.params.pointer, grads: grads.pointer, range: 0..<grads.count, lr: Float(lr))
        globalStep += 1
        tokensSeen += sums[.tokens]
        return StepReport(sums: sums, gradNorm: norm, learningRate: lr, seconds: Date().timeIntervalSince(started))
    }

    /// Runs to `totalSteps`, logging every `logging_steps`, evaluating every `eval_steps`, saving
    /// checkpoints every `save_steps`, and writes the final model to output_dir.
    public func run() throws {
        let out = args.outputDir
        if comm.isMain {
            do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
                throw DPOError.file(out, "cannot create the output directory: \(error.localizedDescription)")
            }
        }
        if let resume = args.resumeFromCheckpoint {
            try resumeFrom(resume)
        }
        if args.precomputeRefLogProbs, loss.needsReference, referenceCache == nil {
            referenceCache = try ReferenceCache.loadOrCompute(trainer: self)
        }
        let metrics = comm.isMain ? try MetricsFile(path: out + "/metrics.jsonl", truncateAfterStep: globalStep) : nil
        let progress = ProgressLine(total: totalSteps, enabled: comm.isMain && printProgress)
        while globalStep < totalSteps {
            let report = try step()
            window.add(report, pairs: report.sums[.pairs])
            let logNow = globalStep % args.loggingSteps == 0 || globalStep == totalSteps
            if logNow {
                let line = window.line(step: globalStep, epoch: Double(globalStep) / Double(stepsPerEpoch), tokensSeen: tokensSeen)
                window = LogWindow()
                if comm.isMain {
                    try metrics?.append(line)
                    onLog?(line)
                }
                progress.update(step: globalStep, line: line)
            }
            if let every = args.evalSteps, eval != nil, globalStep % every == 0, globalStep < totalSteps {
                try evaluateAndLog(metrics: metrics, progress: progress)
            }
            if let every = args.saveSteps, globalStep % every == 0, globalStep < totalSteps {
                try saveCheckpoint()
            }
            if globalStep == interruptAfterStep { return }
        }
        progress.finish()
        if eval != nil { try evaluateAndLog(metrics: metrics, progress: progress) }
        if comm.isMain {
            try ModelDirectory.save(policy, to: out, configJSON: policyConfigJSON, companionsFrom: modelDirectory,
                                    dtype: args.saveDtype == "bfloat16" ? .bf16 : .f32)
        }
        comm.barrier()
    }

    func evaluateAndLog(metrics: MetricsFile?, progress: ProgressLine) throws {
        guard let eval else { return }
        let sums = evaluate(eval)
        var line = MetricsLine()
        line.add("step", globalStep)
        line.add("epoch", Double(globalStep) / Double(stepsPerEpoch))
        line.add("eval_loss", sums[.loss] / max(sums[.pairs], 1))
        for (k, v) in sums.means(prefix: "eval_") { line.add(k, v) }
        if comm.isMain {
            try metrics?.append(line)
            onLog?(line)
        }
        progress.note(line)
    }

    /// Eval metrics over a dataset (pairs dealt round-robin to ranks, sums reduced), with the KL
    /// divergence of the policy from the reference averaged over the completion tokens.
    public func evaluate(_ data: PreferenceDataset) -> StepSums {
        var sums = StepSums()
        var batch = TokenBatch()
        let b = args.perDeviceEvalBatchSize
        var start = comm.rank * b
        while start < data.count {
            let indices = Array(start..<min(start + b, data.count))
            let micro = forwardPairs(indices, data: data, batch: &batch, cache: nil)
            let (microLoss, _, _) = loss.evaluate(micro.pairs)
            // Loss summed per pair here; the caller divides by the pairs.
            sums.add(pairs: micro.pairs, microLoss: microLoss * Double(indices.count), weight: 1, beta: args.beta,
                     logitSums: micro.logitSums, sequenceTokens: micro.tokens)
            if let reference {
                let (kl, tokens) = KLDivergence.sum(policy: policy, reference: reference, rows: batch.scoredCount)
                sums[.kl] += kl
                sums[.klTokens] += Double(tokens)
            }
            start += b * comm.worldSize
        }
        sums.reduce(over: comm)
        return sums
    }
}

/// Sums of the per-step metrics over a logging window: means of the steps' values, except
/// grad_norm and learning_rate (the last step's), as transformers logs them.
struct LogWindow {
    var steps = 0
    var sums = StepSums()
    var lossSum = 0.0
    var lastGradNorm = 0.0
    var lastLearningRate = 0.0
    var seconds = 0.0
    var pairs = 0.0
    var tokens = 0.0
    var meanSums: [Double] = []

    mutating func add(_ r: DPOTrainer.StepReport, pairs: Double) {
        steps += 1
        lossSum += r.sums[.loss]
        let means = r.sums.means().map(\.1)
        meanSums = meanSums.isEmpty ? means : zip(meanSums, means).map(+)
        lastGradNorm = r.gradNorm
        lastLearningRate = r.learningRate
        seconds += r.seconds
        self.pairs += pairs
        tokens += r.sums[.tokens]
    }

    func line(step: Int, epoch: Double, tokensSeen: Double) -> MetricsLine {
        var line = MetricsLine()
        let n = Double(max(steps, 1))
        line.add("step", step)
        line.add("epoch", epoch)
        line.add("loss", lossSum / n)
        line.add("grad_norm", lastGradNorm)
        line.add("learning_rate", lastLearningRate)
        for (name, total) in zip(StepSums().means().map(\.0), meanSums) { line.add(name, total / n) }
        line.add("num_tokens", tokensSeen)
        line.add("pairs_per_second", seconds > 0 ? pairs / seconds : 0)
        line.add("tokens_per_second", seconds > 0 ? tokens / seconds : 0)
        line.add("step_seconds", seconds / n)
        return line
    }
}

/// KL(π ‖ πref) summed over the scored rows of the batch both models last ran forward on, a few
/// rows at a time: Σ_v π(v) (log π(v) − log πref(v)).
enum KLDivergence {
    static func sum(policy: Transformer, reference: Transformer, rows: Int, chunk: Int = 16) -> (Double, Int) {
        let V = policy.config.vocabSize
        let p = FloatBuffer(count: chunk * V, zeroed: false), q = FloatBuffer(count: chunk * V, zeroed: false)
        let lseP = policy.scoredLogSumExp, lseQ = reference.scoredLogSumExp
        var total = 0.0
        var r0 = 0
        while r0 < rows {
            let n = min(chunk, rows - r0)
            policy.scoredRowLogits(first: r0, count: n, into: p.pointer)
            reference.scoredRowLogits(first: r0, count: n, into: q.pointer)
            for i in 0..<n {
                let lp = lseP[r0 + i], lq = lseQ[r0 + i]
                var kl = 0.0
                for v in 0..<V {
                    let a = p[i * V + v] - lp, b = q[i * V + v] - lq
                    kl += Double(expf(a)) * Double(a - b)
                }
                total += kl
            }
            r0 += n
        }
        return (total, rows)
    }
}
