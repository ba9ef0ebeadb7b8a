import ArgumentParser
import DPOData
import DPOModel
import DPOSupport
import DPOTraining
import Foundation
import Tokenization

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score preference pairs: the summed log-probability of each completion under a model.",
        discussion: """
        Reads {"prompt","chosen","rejected"} rows (JSONL or a JSON array; rows with only chosen/rejected \
        take their common prefix as the prompt) and writes one line per pair, in input order:
        {"chosen_logps", "rejected_logps", "chosen_tokens", "rejected_tokens", "prompt_tokens"}.
        Tokenized as TRL's DPOTrainer does: the EOS string is appended to each completion unless present, \
        and the completion starts where the tokenized prompt and prompt+completion first differ (the \
        earlier of the two for a pair).
        """)

    @Option(help: "A Hugging Face model directory (config.json, model.safetensors, tokenizer.json), or a PEFT LoRA adapter directory (adapter_config.json naming its base).")
    var model: String
    @Option(help: "Preference pairs, JSONL or JSON array.")
    var data: String
    @Option(help: "Where to write the scores (JSONL). '-' writes to standard output.")
    var output: String
    @Option(help: "Pairs per forward pass (packed, no padding).")
    var batchSize = 8
    @Flag(help: "Skip rows that are not valid preference pairs, and report how many.")
    var skipInvalidRows = false
    @Flag(inversion: .prefixedNo, help: "Compute each pair's prompt once for both completions (the same numbers up to rounding); --no-share-prompt packs prompt+chosen and prompt+rejected apart.")
    var sharePrompt = true
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    /// The scores must not replace what they are computed from.
    func checkOutputIsNoInput() throws {
        guard output != "-" else { return }
        let target = Trainer.resolved(output)
        if target == Trainer.resolved(data) { throw DPOError.file(output, "is the --data file; the scores would replace the pairs") }
        if target.hasPrefix(Trainer.resolved(model) + "/") { throw DPOError.file(output, "lies inside the --model directory") }
        _ = try OutputFile.destination(output)  // a directory or block device is refused before any work
    }

    func run() throws {
        try runReportingErrors {
            threadOptions.apply()
            try checkOutputIsNoInput()
            let loaded = try AdapterDirectory.loadModelOrAdapter(model, frozen: true)
            let tokenizer = try Tokenizer(directory: loaded.tokenizerDirectory)
            let (pairs, skipped) = try PreferenceFile.load(data, skipInvalid: skipInvalidRows)
            if skipped > 0 { note("skipped \(skipped) invalid row(s) of \(data)") }
            let vocabulary = ModelVocabulary(size: loaded.model.config.vocabSize)
            let tokenized = try pairs.map { pair -> TokenizedPair in
                let tokenized = try TokenizedPair(pair, tokenizer: tokenizer)
                try vocabulary.check(tokenized.chosen + tokenized.rejected, at: "\(data):\(pair.line)")
                return tokenized
            }
            let started = Date()
            let scores = PairScorer.score(model: loaded.model, pairs: tokenized, pairsPerBatch: batchSize,
                                            sharePrompt: sharePrompt) { done in
                if isatty(STDERR_FILENO) != 0 {
                    Console.note("\rscored \(done)/\(tokenized.count) pairs")
                }
            }
            if isatty(STDERR_FILENO) != 0 { Console.note("\n") }
            let text = scores.map(\.jsonLine).joined(separator: "\n") + "\n"
            if output == "-" {
                try Console.output(text)
            } else {
                try OutputFile.write(text, to: output)
            }
            let tokens = tokenized.reduce(0) { $0 + $1.chosen.count + $1.rejected.count }
            let packed = tokenized.reduce(0) { $0 + PairScorer.packedTokens($1, sharePrompt: sharePrompt) }
            note(String(format: "scored %d pairs (%d tokens, %d through the model) in %.2f s → %@", scores.count, tokens, packed,
                        Date().timeIntervalSince(started), output == "-" ? "stdout" : output))
        }
    }
}
