import DPOSupport
import Foundation
import Tokenization

/// One SFT sequence: token ids and the index of the first token trained on.
public struct SFTExample: Equatable, Sendable {
    public var ids: [Int]
    public var scoreFrom: Int
    /// 1-based line (or element) of the source file.
    public var line = 0
    public var scoredTokens: Int { max(ids.count - max(scoreFrom, 1), 0) }
}

/// SFT data as TRL 1.16's SFTTrainer prepares it:
/// - `{"prompt","completion"}`: EOS appended to the completion unless present; prompt and
///   prompt+completion tokenized; the completion starts where the two first differ; with
///   `completion_only_loss` (default) only its tokens are trained on;
/// - `{"text"}`: EOS appended unless present, every token trained on;
/// - `{"messages"}`: the conversation rendered with the model's chat template, every token trained on.
/// Each sequence keeps its first `max_length` tokens.
public enum SFTData {
    /// A hash of the token ids and where training on them starts.
    public static func fingerprint(_ examples: [SFTExample]) -> UInt64 {
        var h = FNV1a()
        for e in examples { h.add(e.scoreFrom); h.add(e.ids.count); e.ids.forEach { h.add($0) } }
        return h.value
    }

    /// Reads and tokenizes every row. A bad row stops with `FILE:LINE: what` unless `skipInvalid`,
    /// which drops and counts it; a token id outside `vocabulary` always stops (the tokenizer does not
    /// match the model, so every row would be wrong).
    public static func load(path: String, tokenizer: Tokenizer, vocabulary: ModelVocabulary, maxLength: Int?,
                            completionOnlyLoss: Bool, skipInvalid: Bool) throws -> (examples: [SFTExample], skipped: Int) {
        var examples: [SFTExample] = []
        var skipped = 0
        for row in try JSONRows.read(path) {
            let example: SFTExample
            do {
                example = try self.example(row, path: path, tokenizer: tokenizer, maxLength: maxLength,
                                           completionOnlyLoss: completionOnlyLoss)
            } catch is DPOError where skipInvalid {
                skipped += 1
                continue
            }
            try vocabulary.check(example.ids, at: "\(path):\(row.line)")
            var numbered = example
            numbered.line = row.line
            examples.append(numbered)
        }
        if examples.isEmpty { throw DPOError.file(path, skipped > 0 ? "all \(skipped) rows are invalid" : "no rows") }
        return (examples, skipped)
    }

    private static func example(_ row: JSONRows.Row, path: String, tokenizer: Tokenizer, maxLength: Int?,
                                completionOnlyLoss: Bool) throws -> SFTExample {
        let value: Any
        switch row.value {
        case let .success(v): value = v
        case let .failure(e): throw e
        }
        func fail(_ what: String) -> DPOError { DPOError("\(path):\(row.line): \(what)") }
        guard let object = value as? [String: Any] else {
            throw fail("expected a JSON object with \"prompt\"/\"completion\", \"text\" or \"messages\"")
        }
        func string(_ key: String) throws -> String {
            guard let s = object[key] as? String else {
                throw fail(object[key] == nil ? "missing field \"\(key)\"" : "field \"\(key)\" must be a string")
            }
            return s
        }
        let eos = tokenizer.eosToken ?? ""
        func withEOS(_ s: String) -> String { eos.isEmpty || s.hasSuffix(eos) ? s : s + eos }
        var example: SFTExample
        if object["prompt"] is [Any] {
            // Conversational prompt/completion: rendered by the chat template, no EOS appended.
            guard let completionValue = object["completion"] else { throw fail("missing field \"completion\"") }
            let prompt = try ChatRendering.messages(object["prompt"]!, field: "prompt", fail: fail)
            let completion = try ChatRendering.messages(completionValue, field: "completion", fail: fail)
            let promptIDs = tokenizer.encode(try ChatRendering.render(prompt, tokenizer: tokenizer, addGenerationPrompt: true),
                                             addSpecialTokens: false)
            let ids = tokenizer.encode(try ChatRendering.render(prompt + completion, tokenizer: tokenizer, addGenerationPrompt: false),
                                       addSpecialTokens: false)
            var boundary = 0
            while boundary < min(promptIDs.count, ids.count), promptIDs[boundary] == ids[boundary] { boundary += 1 }
            example = SFTExample(ids: ids, scoreFrom: completionOnlyLoss ? boundary : 1)
        } else if object["prompt"] != nil || object["completion"] != nil {
            let prompt = try string("prompt"), completion = try string("completion")
            if completion.isEmpty { throw fail("field \"completion\" is empty") }
            let promptIDs = tokenizer.encode(prompt)
            let ids = tokenizer.encode(prompt + withEOS(completion))
            var boundary = 0
            while boundary < min(promptIDs.count, ids.count), promptIDs[boundary] == ids[boundary] { boundary += 1 }
            example = SFTExample(ids: ids, scoreFrom: completionOnlyLoss ? boundary : 1)
        } else if object["text"] != nil {
            let text = try string("text")
            if text.isEmpty { throw fail("field \"text\" is empty") }
            example = SFTExample(ids: tokenizer.encode(withEOS(text)), scoreFrom: 1)
        } else if let messages = object["messages"] {
            let rendered = try ChatRendering.render(messages: messages, tokenizer: tokenizer, addGenerationPrompt: false,
                                                    field: "messages", fail: fail)
            example = SFTExample(ids: tokenizer.encode(rendered, addSpecialTokens: false), scoreFrom: 1)
        } else {
            throw fail("no \"prompt\"/\"completion\", \"text\" or \"messages\" field")
        }
        if let maxLength { example.ids = Array(example.ids.prefix(maxLength)) }
        if example.scoredTokens == 0 { throw fail("nothing left to train on after truncation to max_length") }
        return example
    }
}
