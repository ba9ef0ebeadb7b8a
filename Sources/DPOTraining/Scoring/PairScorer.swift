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
    /// Appends a pair's two sequences to a batch (sequences 2k and 2k + 1 for the k-th pair), scoring
    /// the completion tokens. The first token of a sequence has no prediction, so a completion that
    /// starts at position 0 is scored from 1.
    ///
    /// With `sharePrompt` the prompt is computed once: tokens [prompt, chosen completion, rejected
    /// completion], the rejected completion attending to the prompt rows as its prefix. The same
    /// numbers up to rounding (the products are split differently); unshared when the pair has no
    /// prompt, or when its two sequences no longer begin with the same prompt tokens.
    public static func append(_ pair: TokenizedPair, to batch: inout TokenBatch, sharePrompt: Bool = true) {
        let from = max(pair.promptLength, 1)
        let shared = sharedLength(pair)
        if sharePrompt, shared >= 1 {
            batch.appendSharingPrefix(pair.chosen, pair.rejected, shared: shared, scoreFrom: from)
        } else {
            batch.append(pair.chosen, scoreFrom: from)
            batch.append(pair.rejected, scoreFrom: from)
        }
    }

    /// Prompt tokens both sequences of a pair begin with (truncation keeps the start, so the whole
    /// prompt unless it was cut), or 0 when they differ there.
    public static func sharedLength(_ pair: TokenizedPair) -> Int {
        let s = min(pair.promptLength, pair.chosen.count, pair.rejected.count)
        return s >= 1 && pair.chosen[..<s] == pair.rejected[..<s] ? s : 0
    }

    /// Tokens a pair takes in a batch: the prompt once when shared.
    public static func packedTokens(_ pair: TokenizedPair, sharePrompt: Bool = true) -> Int {
        pair.chosen.count + pair.rejected.count - (sharePrompt ? sharedLength(pair) : 0)
    }

    /// Per-sequence sums of the scored tokens' log-probs after `model.forward(batch)`, in float64.
    public static func sequenceSums(model: Transformer, batch: TokenBatch) -> [Double] {
        var sums = [Double](repeating: 0, count: batch.sequenceCount)
        let logp = model.scoredLogProbs
        for (i, s) in batch.scoredSequence.enumerated() { sums[Int(s)] += Double(logp[i]) }
        return sums
    }

    /// Scores pairs in packed batches of `pairsPerBatch`, in input order.
    public static func score(model: Transformer, pairs: [TokenizedPair], pairsPerBatch: Int = 8, sharePrompt: Bool = true,
                             progress: ((Int) -> Void)? = nil) -> [PairScore] {
        var scores: [PairScore] = []
        scores.reserveCapacity(pairs.count)
        var batch = TokenBatch()
        var start = 0
        while start < pairs.count {
            let slice = pairs[start..<min(start + max(pairsPerBatch, 1), pairs.count)]
            batch.removeAll()
            for p in slice { append(p, to: &batch, sharePrompt: sharePrompt) }
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
