import DPOData
import DPOModel
import Foundation

/// Summed completion log-probabilities of a pair under a model.
public struct PairScore: Equatable, Sendable {
    public var chosenLogps: Double
    public var rejectedLogps: Double
    public var chosenTokens: Int
    public var rejectedTokens: Int
    public var promptTokens: Int

    public var jsonLine: String {
        func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        return "{\"chosen_logps\": \(number(chosenLogps)), \"rejected_logps\": \(number(rejectedLogps)), \"chosen_tokens\": \(chosenTokens), \"rejected_tokens\": \(rejectedTokens), \"prompt_tokens\": \(promptTokens)}"
    }
}

public enum PairScorer {
    /// Appends a pair's two sequences to a batch, scoring the completion tokens. The first token of
    /// a sequence has no prediction, so a completion that starts at position 0 is scored from 1.
    public static func append(_ pair: TokenizedPair, to batch: inout TokenBatch) {
        let from = max(pair.promptLength, 1)
        batch.append(pair.chosen, scoreFrom: from)
        batch.append(pair.rejected, scoreFrom: from)
    }

    /// Per-sequence sums of the scored tokens' log-probs after `model.forward(batch)`, in float64.
    public static func sequenceSums(model: Transformer, batch: TokenBatch) -> [Double] {
        var sums = [Double](repeating: 0, count: batch.sequenceCount)
        let logp = model.scoredLogProbs
        for (i, s) in batch.scoredSequence.enumerated() { sums[Int(s)] += Double(logp[i]) }
        return sums
    }

    /// Scores pairs in packed batches of `pairsPerBatch`, in input order.
    public static func score(model: Transformer, pairs: [TokenizedPair], pairsPerBatch: Int = 8,
                             progress: ((Int) -> Void)? = nil) -> [PairScore] {
        var scores: [PairScore] = []
        scores.reserveCapacity(pairs.count)
        var batch = TokenBatch()
        var start = 0
        while start < pairs.count {
            let slice = pairs[start..<min(start + max(pairsPerBatch, 1), pairs.count)]
            batch.removeAll()
            for p in slice { append(p, to: &batch) }
            model.forward(batch)
            let sums = sequenceSums(model: model, batch: batch)
            for (k, p) in slice.enumerated() {
                let from = max(p.promptLength, 1)
                scores.append(PairScore(chosenLogps: sums[2 * k], rejectedLogps: sums[2 * k + 1],
                                        chosenTokens: p.chosen.count - from, rejectedTokens: p.rejected.count - from,
                                        promptTokens: p.promptLength))
            }
            start += slice.count
            progress?(start)
        }
        return scores
    }
}
