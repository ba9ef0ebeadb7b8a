import DPOComm
import DPOData
import DPOModel
import DPOSupport
import Foundation
import Tokenization

/// DPO training with TRL 1.16's numbers (see Tests/DPOTestSupport/Fixtures/trl/SEMANTICS.md):
/// - sequence log-prob = the sum of the completion tokens' log-probs (fp32 compute, float64 sums);
/// - the objective of an optimizer step is the mean of the loss over the pairs of the global batch
///   (per_device_train_batch_size × gradient_accumulation_steps × world size); each micro-batch's
///   loss is weighted by its share of those pairs, so N ranks give the numbers of one rank with N
///   times the accumulation;
/// - gradients summed over ranks, global-norm clipping (norm measured before clipping), AdamW with
///   bias correction and decoupled weight decay (not on biases and norm weights), a LambdaLR schedule.
///
/// The policy comes from `model`, the frozen reference from `ref_model` (default: a copy of the
/// starting policy), preference pairs from `train_file` (and `eval_file`).
public final class DPOObjective: TrainingObjective {
    let args: TrainingArguments
    let comm: Communicator
    let policy: Transformer
    /// The frozen reference; nil when the loss needs none.
    public private(set) var reference: Transformer?
    public let tokenizer: Tokenizer
    public let train: PreferenceDataset
    public let eval: PreferenceDataset?
    public let loss: PreferenceLoss
    /// Precomputed reference log-probs per train pair (chosen, rejected), when precompute_ref_log_probs.
    var referenceCache: [(Double, Double)]?
    private var batch = TokenBatch()

    package convenience init(args: TrainingArguments, comm: Communicator, policy: Transformer, tokenizer: Tokenizer) throws {
        let vocabulary = ModelVocabulary(size: policy.config.vocabSize)
        let train = try Self.loadPairs(args.trainFile, args: args, tokenizer: tokenizer, vocabulary: vocabulary)
        let eval = try args.evalFile.map { try Self.loadPairs($0, args: args, tokenizer: tokenizer, vocabulary: vocabulary) }
        if comm.isMain {
            for note in train.summary(path: args.trainFile) + (eval?.summary(path: args.evalFile ?? "") ?? []) {
                Console.note(note + "\n")
            }
        }
        try self.init(args: args, comm: comm, policy: policy, tokenizer: tokenizer, train: train, eval: eval)
    }

    /// A preference file as training reads it: tokenized with the run's tokenizer (which must name
    /// the EOS that completions end with), checked against the model's vocabulary, cut by
    /// `max_prompt_length` and `max_length`, invalid rows skipped with `skip_invalid_rows`.
    public static func loadPairs(_ path: String, args: TrainingArguments, tokenizer: Tokenizer,
                                 vocabulary: ModelVocabulary) throws -> PreferenceDataset {
        guard tokenizer.eosToken != nil else {
            throw DPOError.file(args.model, "the tokenizer names no eos_token (tokenizer_config.json); DPO appends it to completions")
        }
        return try PreferenceDataset.load(path: path, tokenizer: tokenizer, vocabulary: vocabulary, maxLength: args.maxLength,
                                          maxPromptLength: args.maxPromptLength, skipInvalid: args.skipInvalidRows)
    }

    /// On pairs already tokenized (`dpo-dist bench`'s synthetic workload); the reference still
    /// comes from `ref_model` or `model`.
    package init(args: TrainingArguments, comm: Communicator, policy: Transformer, tokenizer: Tokenizer,
                 train: PreferenceDataset, eval: PreferenceDataset?) throws {
        self.args = args
        self.comm = comm
        self.policy = policy
        self.tokenizer = tokenizer
        self.train = train
        self.eval = eval
        loss = PreferenceLoss(types: try args.lossTypes, weights: args.lossWeights, beta: args.beta, labelSmoothing: args.labelSmoothing,
                              simpoGamma: args.simpoGamma, orpoAlpha: args.orpoAlpha, discopopTau: args.discopopTau)
        // With precomputed log-probs the reference is loaded only if the cache must be built (or for eval).
        if loss.needsReference && !args.precomputeRefLogProbs { reference = try Self.loadReference(args: args, policy: policy) }
    }

    /// The reference model: `ref_model`, or a frozen copy of the starting policy (with LoRA, the
    /// policy's base with the adapters off or with the starting adapter: `Trainer.loraReference`).
    static func loadReference(args: TrainingArguments, policy: Transformer) throws -> Transformer {
        if args.refModel == nil, policy.adapters != nil { return try Trainer.loraReference(args: args, policy: policy) }
        if let refPath = args.refModel {
            let ref = try AdapterDirectory.loadModelOrAdapter(refPath, matmul: try args.makeMatmul(), frozen: true).model
            guard ref.config.vocabSize == policy.config.vocabSize else {
                throw DPOError.file(refPath, "reference vocabulary \(ref.config.vocabSize) differs from the policy's \(policy.config.vocabSize)")
            }
            return ref
        }
        return try ModelDirectory.load(args.model, matmul: try args.makeMatmul(), frozen: true).model
    }

    public var exampleCount: Int { train.count }
    public var fingerprint: UInt64 { train.fingerprint }
    public var evalFingerprint: UInt64 { eval?.fingerprint ?? 0 }

    public func largestMicroBatch() -> (tokens: Int, longestSequence: Int, longestExample: String) {
        func largest(_ data: PreferenceDataset, _ path: String, _ size: Int) -> (tokens: Int, longestSequence: Int, longestExample: String) {
            DPOTraining.largestMicroBatch(of: size, count: data.count,
                                          tokens: { PairScorer.packedTokens(data.pairs[$0], sharePrompt: self.args.sharePrompt) },
                                          longest: { max(data.pairs[$0].chosen.count, data.pairs[$0].rejected.count) },
                                          source: { "\(path):\(data.lines[$0])" })
        }
        let training = largest(train, args.trainFile, args.perDeviceTrainBatchSize)
        guard let eval, let evalFile = args.evalFile else { return training }
        let evaluation = largest(eval, evalFile, args.perDeviceEvalBatchSize)
        return evaluation.tokens > training.tokens ? evaluation : training
    }
    public func referenceActivationBytes(tokens: Int, longestSequence: Int) -> Int {
        reference?.activationBytes(tokens: tokens, longestSequence: longestSequence, scoredRows: tokens) ?? 0
    }

    public func reserveReferenceActivations(tokens: Int, longestSequence: Int) {
        reference?.reserve(tokens: tokens, longestSequence: longestSequence, scoredRows: tokens)
    }
    public func normalizerWeight(of example: Int) -> Double { 1 }
    public func tokens(of example: Int) -> Int { PairScorer.packedTokens(train.pairs[example], sharePrompt: args.sharePrompt) }

    public func prepare(outputDir: String) throws {
        if args.precomputeRefLogProbs, loss.needsReference, referenceCache == nil {
            referenceCache = try ReferenceCache.loadOrCompute(objective: self, outputDir: outputDir)
        }
    }

    struct MicroResult {
        var pairs: [PairLogps]
        var logitSums: [(chosen: Double, rejected: Double)]
        var tokens: Int
        var tokenStatistics: TokenStatistics
    }

    /// Policy (and reference) forward over a set of pairs; per-pair summed log-probs and logit sums,
    /// the policy's entropy over both completions and its top-1 accuracy over the chosen ones.
    func forwardPairs(_ indices: [Int], data: PreferenceDataset, cache: [(Double, Double)]?) -> MicroResult {
        batch.removeAll()
        for i in indices { PairScorer.append(data.pairs[i], to: &batch, sharePrompt: args.sharePrompt) }
        policy.forward(batch)
        let sums = PairScorer.sequenceSums(model: policy, batch: batch)
        var logitSums = [Double](repeating: 0, count: batch.sequenceCount)
        let z = policy.scoredLogitSums, V = Double(policy.config.vocabSize)
        for (i, s) in batch.scoredSequence.enumerated() { logitSums[Int(s)] += Double(z[i]) / V }
        let tokenStatistics = TokenStatistics(model: policy, batch: batch, countsForAccuracy: { $0 % 2 == 0 })
        var refSums = [Double](repeating: 0, count: batch.sequenceCount)
        if let cache {
            for (k, i) in indices.enumerated() { (refSums[2 * k], refSums[2 * k + 1]) = cache[i] }
        } else if let reference {
            reference.forward(batch)
            refSums = PairScorer.sequenceSums(model: reference, batch: batch)
        }
        var pairs: [PairLogps] = []
        var logits: [(Double, Double)] = []
        var tokens = 0  // num_tokens counts the prompt in both sequences, as TRL, shared or not
        for (k, i) in indices.enumerated() {
            let p = data.pairs[i], from = max(p.promptLength, 1)
            pairs.append(PairLogps(policyChosen: sums[2 * k], policyRejected: sums[2 * k + 1],
                                   referenceChosen: refSums[2 * k], referenceRejected: refSums[2 * k + 1],
                                   chosenTokens: p.chosen.count - from, rejectedTokens: p.rejected.count - from))
            logits.append((logitSums[2 * k], logitSums[2 * k + 1]))
            tokens += p.chosen.count + p.rejected.count
        }
        return MicroResult(pairs: pairs, logitSums: logits, tokens: tokens, tokenStatistics: tokenStatistics)
    }

    public func trainMicroBatch(_ indices: [Int], normalizer: Double, sums: inout StepSums) throws {
        let micro = forwardPairs(indices, data: train, cache: referenceCache)
        let (microLoss, dc, dr) = loss.evaluate(micro.pairs)
        let weight = Double(indices.count) / normalizer
        // Every scored token of a sequence gets its sequence's dJ/dlogp.
        var dlogp = [Float](repeating: 0, count: batch.scoredCount)
        for (i, s) in batch.scoredSequence.enumerated() {
            let pair = Int(s) / 2
            dlogp[i] = Float(weight * (Int(s) % 2 == 0 ? dc[pair] : dr[pair]))
        }
        dlogp.withUnsafeBufferPointer { policy.backward(batch, dlogp: $0.baseAddress!) }
        sums.add(pairs: micro.pairs, microLoss: microLoss, weight: weight, beta: args.beta,
                 logitSums: micro.logitSums, sequenceTokens: micro.tokens)
        sums.addTokenStatistics(micro.tokenStatistics)
    }

    public func metrics(_ sums: StepSums, prefix: String) -> [(String, Double)] { sums.means(prefix: prefix) }

    public func writeReport(outputDir: String, metrics: [(String, Double)]) throws {
        try writeReport(outputDir: outputDir, metrics: metrics, prompts: 4, title: "Policy against reference: \(args.outputDir)")
    }

    /// eval_report.md and eval_records.jsonl (with an eval set), run_machine.json, then report.html
    /// from all the run directory holds.
    public func writeReport(outputDir: String, metrics: [(String, Double)], prompts: Int, title: String) throws {
        if let eval {
            try EvalReport.write(path: outputDir + "/eval_report.md", policy: policy, reference: reference, tokenizer: tokenizer,
                                 pairs: eval.rows, metrics: metrics, prompts: prompts, maxNewTokens: args.maxNewTokens,
                                 seed: args.seed, title: title)
            try EvalRecords.write(try evalRecords(), to: outputDir + "/" + EvalRecords.fileName)
        } else {
            try EvalRecords.remove(from: outputDir)  // an earlier run's, which this report must not show
        }
        try RunMachine.current(ranks: comm.worldSize, bf16: args.bf16).write(to: outputDir + "/" + RunMachine.fileName)
        try HTMLReport.write(runDirectory: outputDir)
    }

    /// Eval metrics (loss a mean over pairs), pairs dealt round-robin to ranks and sums reduced, with
    /// the KL divergence of the policy from the reference averaged over the completion tokens.
    public func evaluate() throws -> StepSums? {
        guard let eval else { return nil }
        // With precomputed log-probs for training the reference is loaded for the eval only now; a
        // reference that cannot be loaded is an error, never an eval against zeros.
        if reference == nil, loss.needsReference { reference = try Self.loadReference(args: args, policy: policy) }
        var sums = StepSums()
        let b = args.perDeviceEvalBatchSize
        var start = comm.rank * b
        while start < eval.count {
            let indices = Array(start..<min(start + b, eval.count))
            let micro = forwardPairs(indices, data: eval, cache: nil)
            let (microLoss, _, _) = loss.evaluate(micro.pairs)
            sums.add(pairs: micro.pairs, microLoss: microLoss, weight: Double(indices.count) / Double(eval.count), beta: args.beta,
                     logitSums: micro.logitSums, sequenceTokens: micro.tokens)
            sums.addTokenStatistics(micro.tokenStatistics)
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
