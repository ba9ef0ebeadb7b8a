import Foundation

/// One SFT sequence: token ids and the index of the first token trained on.
public struct SFTExample: Equatable, Sendable {
    public var ids: [Int]
    public var scoreFrom: Int
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
    public static func load(path: String, tokenizer: Tokenizer, maxLength: Int?, completionOnlyLoss: Bool,
                            skipInvalid: Bool) throws -> (examples: [SFTExample], skipped: Int) {
        let rows = try JSONRows.read(path)
        let eos = tokenizer.eosToken ?? ""
        func withEOS(_ s: String) -> String { eos.isEmpty || s.hasSuffix(eos) ? s : s + eos }
        var examples: [SFTExample] = []
        var skipped = 0
        for row in rows {
            do {
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
                examples.append(example)
            } catch is DPOError where skipInvalid {
                skipped += 1
            }
        }
        if examples.isEmpty { throw DPOError.file(path, skipped > 0 ? "all \(skipped) rows are invalid" : "no rows") }
        return (examples, skipped)
    }
}

extension Trainer {
    /// An SFT run: negative log-likelihood of the trained tokens, a mean over all trained tokens of
    /// the global batch (TRL's normalisation by the number of items across accumulation and ranks).
    public static func sft(args: TrainingArguments, comm: Communicator, parallel: ParallelOptions = ParallelOptions()) throws -> Trainer {
        try make(args: args, comm: comm, parallel: parallel) {
            try SFTObjective(args: args, comm: comm, policy: $0, tokenizer: $1)
        }
    }
}

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
        let (train, skipped) = try SFTData.load(path: args.trainFile, tokenizer: tokenizer, maxLength: args.maxLength,
                                                completionOnlyLoss: args.completionOnlyLoss, skipInvalid: args.skipInvalidRows)
        if skipped > 0, comm.isMain { FileHandle.standardError.write(Data("\(args.trainFile): skipped \(skipped) invalid row(s)\n".utf8)) }
        self.train = train
        eval = try args.evalFile.map {
            try SFTData.load(path: $0, tokenizer: tokenizer, maxLength: args.maxLength,
                             completionOnlyLoss: args.completionOnlyLoss, skipInvalid: args.skipInvalidRows).examples
        }
    }

    public var exampleCount: Int { train.count }
    public var fingerprint: UInt64 {
        var h = FNV1a()
        for e in train { h.add(e.scoreFrom); h.add(e.ids.count); e.ids.forEach { h.add($0) } }
        return h.value
    }
    public func normalizerWeight(of example: Int) -> Double { Double(train[example].scoredTokens) }
    public func prepare(outputDir: String) throws {}
    public func writeReport(outputDir: String, metrics: [(String, Double)]) throws {}

    /// Negative log-likelihood summed over the scored tokens of these examples.
    private func forward(_ examples: [SFTExample]) -> Double {
        batch.removeAll()
        for e in examples { batch.append(e.ids, scoreFrom: max(e.scoreFrom, 1)) }
        policy.forward(batch)
        return -policy.scoredLogProbs.reduce(0.0) { $0 + Double($1) }
    }

    public func trainMicroBatch(_ indices: [Int], normalizer: Double, sums: inout StepSums) throws {
        let nll = forward(indices.map { train[$0] })
        let dlogp = [Float](repeating: Float(-1 / normalizer), count: batch.scoredCount)
        dlogp.withUnsafeBufferPointer { policy.backward(batch, dlogp: $0.baseAddress!) }
        sums[.loss] += nll / normalizer
        sums[.pairs] += Double(indices.count)
        sums[.chosenTokens] += Double(batch.scoredCount)
        sums[.tokens] += Double(batch.tokenCount)
    }

    public func metrics(_ sums: StepSums, prefix: String) -> [(String, Double)] { [] }

    public func evaluate() -> StepSums? {
        guard let eval else { return nil }
        var sums = StepSums()
        let total = Double(eval.reduce(0) { $0 + $1.scoredTokens })
        let b = args.perDeviceEvalBatchSize
        var start = comm.rank * b
        while start < eval.count {
            sums[.loss] += forward(Array(eval[start..<min(start + b, eval.count)])) / total
            start += b * comm.worldSize
        }
        sums.reduce(over: comm)
        return sums
    }
}
