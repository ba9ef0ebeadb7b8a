import DPOComm
import DPOData
import DPOModel
import DPOSupport
import Foundation
import Tokenization

/// SFT: negative log-likelihood of the trained tokens, a mean over all trained tokens of the global
/// batch (TRL's normalisation by the number of items across accumulation and ranks).
public final class SFTObjective: TrainingObjective {
    let args: TrainingArguments
    let comm: Communicator
    let policy: Transformer
    public let train: [SFTExample]
    public let eval: [SFTExample]?
    private var batch = TokenBatch()

    init(args: TrainingArguments, comm: Communicator, policy: Transformer, tokenizer: Tokenizer) throws {
        self.args = args
        self.comm = comm
        self.policy = policy
        let vocabulary = ModelVocabulary(size: policy.config.vocabSize)
        let (train, skipped) = try SFTData.load(path: args.trainFile, tokenizer: tokenizer, vocabulary: vocabulary, maxLength: args.maxLength,
                                                completionOnlyLoss: args.completionOnlyLoss, skipInvalid: args.skipInvalidRows)
        if skipped > 0, comm.isMain { Console.note("\(args.trainFile): skipped \(skipped) invalid row(s)\n") }
        self.train = train
        eval = try args.evalFile.map {
            try SFTData.load(path: $0, tokenizer: tokenizer, vocabulary: vocabulary, maxLength: args.maxLength,
                             completionOnlyLoss: args.completionOnlyLoss, skipInvalid: args.skipInvalidRows).examples
        }
    }

    public var exampleCount: Int { train.count }
    public var fingerprint: UInt64 { SFTData.fingerprint(train) }
    public var evalFingerprint: UInt64 { eval.map(SFTData.fingerprint) ?? 0 }

    public func largestMicroBatch() -> (tokens: Int, longestSequence: Int, longestExample: String) {
        func largest(_ examples: [SFTExample], _ path: String, _ size: Int) -> (tokens: Int, longestSequence: Int, longestExample: String) {
            DPOTraining.largestMicroBatch(of: size, count: examples.count, tokens: { examples[$0].ids.count },
                                          longest: { examples[$0].ids.count }, source: { "\(path):\(examples[$0].line)" })
        }
        let training = largest(train, args.trainFile, args.perDeviceTrainBatchSize)
        guard let eval, let evalFile = args.evalFile else { return training }
        let evaluation = largest(eval, evalFile, args.perDeviceEvalBatchSize)
        return evaluation.tokens > training.tokens ? evaluation : training
    }
    public func normalizerWeight(of example: Int) -> Double { Double(train[example].scoredTokens) }
    public func tokens(of example: Int) -> Int { train[example].ids.count }
    public func prepare(outputDir: String) throws {}
    public func writeReport(outputDir: String, metrics: [(String, Double)]) throws {}

    /// Negative log-likelihood summed over the scored tokens of these examples, and the entropy and
    /// top-1 accuracy over the same tokens.
    private func forward(_ examples: [SFTExample]) -> (nll: Double, tokenStatistics: TokenStatistics) {
        batch.removeAll()
        for e in examples { batch.append(e.ids, scoreFrom: max(e.scoreFrom, 1)) }
        policy.forward(batch)
        return (-policy.scoredLogProbs.reduce(0.0) { $0 + Double($1) },
                TokenStatistics(model: policy, batch: batch, countsForAccuracy: { _ in true }))
    }

    public func trainMicroBatch(_ indices: [Int], normalizer: Double, sums: inout StepSums) throws {
        let (nll, tokenStatistics) = forward(indices.map { train[$0] })
        let dlogp = [Float](repeating: Float(-1 / normalizer), count: batch.scoredCount)
        dlogp.withUnsafeBufferPointer { policy.backward(batch, dlogp: $0.baseAddress!) }
        sums[.loss] += nll / normalizer
        sums[.pairs] += Double(indices.count)
        sums[.chosenTokens] += Double(batch.scoredCount)
        sums[.tokens] += Double(batch.tokenCount)
        sums.addTokenStatistics(tokenStatistics)
    }

    public func metrics(_ sums: StepSums, prefix: String) -> [(String, Double)] { sums.tokenMeans(prefix: prefix) }

    public func evaluate() throws -> StepSums? {
        guard let eval else { return nil }
        var sums = StepSums()
        let total = Double(eval.reduce(0) { $0 + $1.scoredTokens })
        let b = args.perDeviceEvalBatchSize
        var start = comm.rank * b
        while start < eval.count {
            let (nll, tokenStatistics) = forward(Array(eval[start..<min(start + b, eval.count)]))
            sums[.loss] += nll / total
            sums.addTokenStatistics(tokenStatistics)
            start += b * comm.worldSize
        }
        sums.reduce(over: comm)
        return sums
    }
}
