import DPOSupport
import Foundation
import Tokenization

/// Tokenized preference pairs ready for training, after TRL's length rules:
/// - `max_prompt_length` (TRL before 1.0): a longer prompt keeps its last tokens;
/// - `max_length`: each sequence (prompt + completion) keeps its first `max_length` tokens;
/// - a pair whose prompt alone fills `max_length` is dropped and counted.
public struct PreferenceDataset: Sendable {
    public var pairs: [TokenizedPair]
    /// The source line of each kept pair.
    public var lines: [Int]
    /// The kept pairs as read (for reports).
    public var rows: [PreferencePair] = []
    public var droppedLongPrompts = 0
    public var identicalCompletions = 0
    public var skippedInvalid = 0
    /// Kept pairs whose prompt was cut to `max_prompt_length`, and whose chosen or rejected sequence
    /// was cut to `max_length`.
    public var truncatedPrompts = 0
    public var truncatedSequences = 0
    /// What the file's rows hold beyond the pairs (unused fields, implicit prompts), from the same read.
    public var survey = PreferenceFileSurvey()

    public init(pairs: [TokenizedPair], lines: [Int]) {
        self.pairs = pairs
        self.lines = lines
    }

    public var count: Int { pairs.count }

    /// A token id outside `vocabulary` stops the load, naming the row, whatever `skipInvalid` says.
    public static func load(path: String, tokenizer: Tokenizer, vocabulary: ModelVocabulary, maxLength: Int?,
                            maxPromptLength: Int?, skipInvalid: Bool) throws -> PreferenceDataset {
        let (rows, skipped, survey) = try PreferenceFile.loadSurveyed(path, skipInvalid: skipInvalid)
        var data = PreferenceDataset(pairs: [], lines: [])
        data.skippedInvalid = skipped
        data.survey = survey
        for row in rows {
            if row.chosen == row.rejected { data.identicalCompletions += 1 }
            var pair = try TokenizedPair(row, tokenizer: tokenizer)
            try vocabulary.check(pair.chosen + pair.rejected, at: "\(path):\(row.line)")
            var promptCut = false
            if let maxPrompt = maxPromptLength, pair.promptLength > maxPrompt {
                promptCut = true
                let cut = pair.promptLength - maxPrompt
                pair = TokenizedPair(chosen: Array(pair.chosen.dropFirst(cut)), rejected: Array(pair.rejected.dropFirst(cut)),
                                     promptLength: maxPrompt)
            }
            if let maxLength {
                if pair.promptLength >= maxLength {
                    data.droppedLongPrompts += 1
                    continue
                }
                if max(pair.chosen.count, pair.rejected.count) > maxLength { data.truncatedSequences += 1 }
                pair.chosen = Array(pair.chosen.prefix(maxLength))
                pair.rejected = Array(pair.rejected.prefix(maxLength))
            }
            if promptCut { data.truncatedPrompts += 1 }
            data.pairs.append(pair)
            data.lines.append(row.line)
            data.rows.append(row)
        }
        if data.pairs.isEmpty {
            throw DPOError.file(path, "no pair left: all \(data.droppedLongPrompts) prompts fill max_length \(maxLength ?? 0)")
        }
        return data
    }

    /// A short account of what was dropped or suspicious, for the log.
    public func summary(path: String) -> [String] {
        var notes: [String] = []
        if skippedInvalid > 0 { notes.append("\(path): skipped \(skippedInvalid) invalid row(s)") }
        if droppedLongPrompts > 0 { notes.append("\(path): dropped \(droppedLongPrompts) pair(s) whose prompt fills max_length") }
        if identicalCompletions > 0 {
            notes.append("warning: \(path): \(identicalCompletions) pair(s) have chosen equal to rejected; they carry no preference")
        }
        return notes
    }

    /// A hash of the token ids and boundaries: what the reference log-prob cache and the ranks'
    /// start-up check key on.
    public var fingerprint: UInt64 {
        var h = FNV1a()
        for p in pairs {
            h.add(p.promptLength)
            h.add(p.chosen.count); p.chosen.forEach { h.add($0) }
            h.add(p.rejected.count); p.rejected.forEach { h.add($0) }
        }
        return h.value
    }
}
