import ChatTemplates
import Foundation
import Tokenization

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
