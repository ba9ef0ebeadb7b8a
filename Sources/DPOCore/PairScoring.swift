import Foundation

/// A preference pair as token ids, tokenized as TRL's DPOTrainer does (1.16):
/// 1. the EOS string is appended to each completion unless it already ends with it;
/// 2. prompt, prompt+chosen and prompt+rejected are tokenized separately, with special tokens;
/// 3. one boundary for the pair: the shorter of the two common prefixes of the tokenized prompt with
///    the tokenized prompt+completion. Tokens from there on are the completion and are scored.
public struct TokenizedPair: Equatable, Sendable {
    /// prompt + chosen, and prompt + rejected, as ids.
    public var chosen: [Int]
    public var rejected: [Int]
    /// The shared boundary: ids before it are prompt.
    public var promptLength: Int

    public init(chosen: [Int], rejected: [Int], promptLength: Int) {
        self.chosen = chosen; self.rejected = rejected; self.promptLength = promptLength
    }

    public var chosenCompletionCount: Int { chosen.count - promptLength }
    public var rejectedCompletionCount: Int { rejected.count - promptLength }

    /// Plain text as described above; conversational pairs rendered with the chat template (prompt
    /// with the generation prompt, prompt + completion without), no EOS appended, and tokenized
    /// without special tokens, as transformers' `apply_chat_template` does.
    public init(_ pair: PreferencePair, tokenizer: Tokenizer) throws {
        let prompt: [Int], chosen: [Int], rejected: [Int]
        if let c = pair.conversation {
            func ids(_ m: [ChatMessage], generation: Bool) throws -> [Int] {
                tokenizer.encode(try ChatRendering.render(m, tokenizer: tokenizer, addGenerationPrompt: generation), addSpecialTokens: false)
            }
            prompt = try ids(c.prompt, generation: true)
            chosen = try ids(c.prompt + c.chosen, generation: false)
            rejected = try ids(c.prompt + c.rejected, generation: false)
        } else {
            let eos = tokenizer.eosToken ?? ""
            func withEOS(_ s: String) -> String { eos.isEmpty || s.hasSuffix(eos) ? s : s + eos }
            prompt = tokenizer.encode(pair.prompt)
            chosen = tokenizer.encode(pair.prompt + withEOS(pair.chosen))
            rejected = tokenizer.encode(pair.prompt + withEOS(pair.rejected))
        }
        func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
            var n = 0
            while n < min(a.count, b.count), a[n] == b[n] { n += 1 }
            return n
        }
        self.init(chosen: chosen, rejected: rejected,
                  promptLength: min(commonPrefix(prompt, chosen), commonPrefix(prompt, rejected)))
    }
}

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
