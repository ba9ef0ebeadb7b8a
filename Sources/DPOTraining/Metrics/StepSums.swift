import DPOComm
import Foundation

/// Sums and counts gathered over the pairs of one optimizer step (or one eval pass), one flat array
/// of doubles so that reducing them over ranks is one all-reduce. Means are taken only after the
/// reduction, so every metric covers all ranks' pairs, never rank 0's alone.
public struct StepSums: Sendable {
    public enum Slot: Int, CaseIterable {
        case loss, pairs, rewardsChosen, rewardsRejected, accurate, margins, logpsChosen, logpsRejected
        case logitsChosen, chosenTokens, logitsRejected, rejectedTokens, tokens, kl, klTokens
        case entropy, entropyTokens, topOne, accuracyTokens
    }
    public var values = [Double](repeating: 0, count: Slot.allCases.count)
    public init() {}

    public subscript(_ slot: Slot) -> Double {
        get { values[slot.rawValue] }
        set { values[slot.rawValue] = newValue }
    }

    public mutating func reduce(over comm: Communicator) {
        values.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: $0.count) }
    }

    /// Adds one micro-batch's pairs. `weight` is the micro-batch's share of the global objective
    /// (pairs in it over pairs in the global batch), so that Σ weight · loss is the step's loss.
    public mutating func add(pairs: [PairLogps], microLoss: Double, weight: Double, beta: Double,
                             logitSums: [(chosen: Double, rejected: Double)], sequenceTokens: Int) {
        self[.loss] += microLoss * weight
        self[.pairs] += Double(pairs.count)
        for (p, l) in zip(pairs, logitSums) {
            let rc = beta * (p.policyChosen - p.referenceChosen), rr = beta * (p.policyRejected - p.referenceRejected)
            self[.rewardsChosen] += rc
            self[.rewardsRejected] += rr
            self[.accurate] += rc > rr ? 1 : 0  // strict, as TRL: a tie is not a correct preference
            self[.margins] += rc - rr
            self[.logpsChosen] += p.policyChosen
            self[.logpsRejected] += p.policyRejected
            self[.logitsChosen] += l.chosen
            self[.chosenTokens] += Double(p.chosenTokens)
            self[.logitsRejected] += l.rejected
            self[.rejectedTokens] += Double(p.rejectedTokens)
        }
        self[.tokens] += Double(sequenceTokens)
    }

    /// Adds the policy's per-token `entropy` and `mean_token_accuracy` sums: the entropy over
    /// `entropyTokens` scored rows, the argmax == target count over `accuracyTokens` rows.
    public mutating func addTokenStatistics(_ t: TokenStatistics) {
        self[.entropy] += t.entropy
        self[.entropyTokens] += Double(t.entropyTokens)
        self[.topOne] += Double(t.topOne)
        self[.accuracyTokens] += Double(t.accuracyTokens)
    }

    /// `entropy` and `mean_token_accuracy` as TRL 1.16 logs them (see `TokenStatistics`): token-
    /// weighted means over the step's (or eval's) tokens of all ranks.
    public func tokenMeans(prefix: String = "") -> [(String, Double)] {
        [(prefix + "entropy", self[.entropy] / max(self[.entropyTokens], 1)),
         (prefix + "mean_token_accuracy", self[.topOne] / max(self[.accuracyTokens], 1))]
    }

    /// TRL's metric names and meanings (means over pairs; logits/* token-weighted means of the
    /// per-position mean logit; entropy and mean_token_accuracy token-weighted, see `TokenStatistics`).
    public func means(prefix: String = "") -> [(String, Double)] {
        let n = max(self[.pairs], 1)
        var out: [(String, Double)] = [
            ("rewards/chosen", self[.rewardsChosen] / n),
            ("rewards/rejected", self[.rewardsRejected] / n),
            ("rewards/accuracies", self[.accurate] / n),
            ("rewards/margins", self[.margins] / n),
            ("logps/chosen", self[.logpsChosen] / n),
            ("logps/rejected", self[.logpsRejected] / n),
            ("logits/chosen", self[.logitsChosen] / max(self[.chosenTokens], 1)),
            ("logits/rejected", self[.logitsRejected] / max(self[.rejectedTokens], 1)),
        ]
        out += tokenMeans()
        if self[.klTokens] > 0 { out.append(("kl", self[.kl] / self[.klTokens])) }
        return out.map { (prefix + $0.0, $0.1) }
    }
}
