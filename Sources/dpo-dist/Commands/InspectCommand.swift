import ArgumentParser
import DPOData
import DPOModel
import DPOSupport
import DPOTraining
import Foundation
import Tokenization

/// `dpo-dist inspect`: the pairs as `train` will see them. The data goes through the same loading
/// as training (`PreferenceDataset.load` with the run's tokenizer, `max_length`,
/// `max_prompt_length` and `skip_invalid_rows`, read from `--config` and the flags as `train` reads
/// them), and each shown sequence is the decoded token ids, so the EOS appended, the chat template's
/// text and any truncation are visible.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what train will see: the first pairs rendered and tokenized, truncated and dropped rows, and data warnings.",
        discussion: """
        For each of the first -n pairs: the prompt and both completions as the decoded token ids (the EOS \
        string appended, conversational rows rendered with the model's chat template), a ▌ where the \
        completion starts, their token counts, and whether max_prompt_length or max_length cut them. Then \
        totals over the whole file and the warnings train prints at its start (fields that are never read, \
        empty or very short implicit prompts, max_length above max_position_embeddings). Reads only the \
        model's config.json and tokenizer files, not its weights.
        """)

    @Option(help: ArgumentHelp("A YAML file of training arguments, as train reads it; its model, train_file, max_length, max_prompt_length and skip_invalid_rows are used.", valueName: "file"))
    var config: String?
    @Option(help: ArgumentHelp("The model directory (its config.json and tokenizer); default: model from --config.", valueName: "dir"))
    var model: String?
    @Option(help: ArgumentHelp("Preference pairs, JSONL or a JSON array; default: train_file from --config.", valueName: "file"))
    var data: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("As train's --max-length (default: TRL's 1024, or the --config file's).", valueName: "n"))
    var maxLength: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("As train's --max-prompt-length (default: null).", valueName: "n"))
    var maxPromptLength: String?
    @Flag(inversion: .prefixedNo, help: "As train's --skip-invalid-rows.")
    var skipInvalidRows: Bool?
    @Option(name: [.customShort("n"), .long], help: "Pairs to show.")
    var examples = 3

    func validate() throws {
        guard examples >= 0 else { throw ValidationError("-n must be 0 or more") }
    }

    func run() throws {
        try runReportingErrors {
            var overrides: [(key: String, value: String)] = []
            if let model { overrides.append(("model", model)) }
            if let data { overrides.append(("train_file", data)) }
            if let maxLength { overrides.append(("max_length", maxLength)) }
            if let maxPromptLength { overrides.append(("max_prompt_length", maxPromptLength)) }
            if let skipInvalidRows { overrides.append(("skip_invalid_rows", "\(skipInvalidRows)")) }
            let args = try TrainingArguments.load(yamlFile: config, overrides: overrides, command: .dpo)
            guard !args.model.isEmpty else { throw DPOError("--model is required (or \"model:\" in the --config file)") }
            guard !args.trainFile.isEmpty else { throw DPOError("--data is required (or \"train_file:\" in the --config file)") }
            try args.validateMaxLength()
            try args.validateMaxPromptLength()
            try inspect(args)
        }
    }

    private func inspect(_ args: TrainingArguments) throws {
        // An adapter directory is inspected as its base's config and the adapter's tokenizer.
        let directories = try AdapterDirectory.configAndTokenizerDirectories(args.model)
        let (modelConfig, _) = try ModelDirectory.loadConfig(directories.config)
        let tokenizer = try Tokenizer(directory: directories.tokenizer)
        let path = args.trainFile
        let dataset = try DPOObjective.loadPairs(path, args: args, tokenizer: tokenizer,
                                                 vocabulary: ModelVocabulary(size: modelConfig.vocabSize))
        var text = ""
        for i in 0..<min(examples, dataset.count) {
            text += try describe(example: i, of: dataset, path: path, tokenizer: tokenizer, args: args)
        }

        let truncated = dataset.truncatedPrompts + dataset.truncatedSequences
        let rows = dataset.count + dataset.droppedLongPrompts + dataset.skippedInvalid
        text += "== \(path): \(rows) rows, \(dataset.count) pairs to train on\n"
        text += "truncated: \(truncated) (prompt cut to max_prompt_length \(optional(args.maxPromptLength)): \(dataset.truncatedPrompts); "
            + "chosen or rejected cut to max_length \(optional(args.maxLength)): \(dataset.truncatedSequences))\n"
        text += "dropped: \(dataset.droppedLongPrompts + dataset.skippedInvalid) (prompt alone fills max_length: "
            + "\(dataset.droppedLongPrompts); invalid rows skipped: \(dataset.skippedInvalid))\n"
        func stats(_ name: String, _ counts: [Int]) -> String {
            "\(name) \(counts.reduce(0, +) / max(counts.count, 1)) mean, \(counts.max() ?? 0) max"
        }
        text += "tokens per pair: " + [stats("prompt", dataset.pairs.map(\.promptLength)),
                                       stats("chosen", dataset.pairs.map(\.chosenCompletionCount)),
                                       stats("rejected", dataset.pairs.map(\.rejectedCompletionCount))].joined(separator: "; ")
            + " (completions counted after the prompt)\n"
        let notes = dataset.summary(path: path).filter { $0.hasPrefix("warning: ") }
            + dataWarnings([(path, dataset)], maxLength: args.maxLength, maxPositionEmbeddings: modelConfig.maxPositionEmbeddings)
        text += notes.isEmpty ? "no warnings\n" : notes.joined(separator: "\n") + "\n"
        try Console.output(text)
    }

    /// One pair: the prompt, then each completion after a ▌, as the decoded ids the trainer scores.
    private func describe(example i: Int, of dataset: PreferenceDataset, path: String, tokenizer: Tokenizer,
                          args: TrainingArguments) throws -> String {
        let kept = dataset.pairs[i]
        let full = try TokenizedPair(dataset.rows[i], tokenizer: tokenizer)
        var cuts: [String] = []
        let promptCut = full.promptLength - kept.promptLength
        if promptCut > 0 { cuts.append("prompt: first \(promptCut) of \(full.promptLength) tokens cut (max_prompt_length \(optional(args.maxPromptLength)))") }
        for (name, fullCount, keptCount) in [("chosen", full.chosen.count - promptCut, kept.chosen.count),
                                             ("rejected", full.rejected.count - promptCut, kept.rejected.count)] where fullCount > keptCount {
            cuts.append("\(name): \(fullCount - keptCount) of \(fullCount - kept.promptLength) completion tokens cut (max_length \(optional(args.maxLength)))")
        }
        func decode(_ ids: ArraySlice<Int>) -> String { tokenizer.decode(Array(ids)) }
        var s = "== example \(i + 1): \(path):\(dataset.lines[i])\n"
        s += "-- prompt, \(kept.promptLength) tokens:\n" + decode(kept.chosen[..<kept.promptLength]) + "▌\n"
        s += "-- chosen, \(kept.chosenCompletionCount) tokens after the prompt:\n▌" + decode(kept.chosen[kept.promptLength...]) + "\n"
        s += "-- rejected, \(kept.rejectedCompletionCount) tokens after the prompt:\n▌" + decode(kept.rejected[kept.promptLength...]) + "\n"
        s += "-- truncation: " + (cuts.isEmpty ? "none" : cuts.joined(separator: "; ")) + "\n\n"
        return s
    }
}

/// The data warnings of `inspect`, which `train` prints once at its start on rank 0: unused fields
/// and empty or very short implicit prompts of each preference file (from the survey its load made),
/// and `max_length` above the model's `max_position_embeddings` (with how many of the files' pairs
/// reach past it; SFT passes no files, and the count is not known).
func dataWarnings(_ files: [(path: String, data: PreferenceDataset)], maxLength: Int?, maxPositionEmbeddings: Int) -> [String] {
    files.flatMap { $0.data.survey.warnings(path: $0.path) }
        + [PreferenceFileSurvey.lengthWarning(maxLength: maxLength, maxPositionEmbeddings: maxPositionEmbeddings,
                                              pairs: files.isEmpty ? nil : files.flatMap { $0.data.pairs })].compactMap { $0 }
}

private func optional(_ x: Int?) -> String { x.map(String.init) ?? "null" }
