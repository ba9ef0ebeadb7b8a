import ChatTemplates
import DPOSupport
import Foundation
import Tokenization

/// Reading preference files: JSONL (one object per line) or a JSON array of objects, with
/// `{"prompt", "chosen", "rejected"}` (standard) or only `{"chosen", "rejected"}` (implicit prompt:
/// the longest common prefix, as TRL's `extract_prompt`).
public enum PreferenceFile {
    /// Reads and checks every row. A bad row stops with `FILE:LINE: what is wrong` unless
    /// `skipInvalid`, which drops it and counts it in `skipped`.
    public static func load(_ path: String, skipInvalid: Bool = false) throws -> (pairs: [PreferencePair], skipped: Int) {
        let (pairs, skipped, _) = try loadSurveyed(path, skipInvalid: skipInvalid)
        return (pairs, skipped)
    }

    /// `load`, and in the same pass over the rows the survey of what they hold beyond the pairs.
    public static func loadSurveyed(_ path: String, skipInvalid: Bool = false) throws
        -> (pairs: [PreferencePair], skipped: Int, survey: PreferenceFileSurvey) {
        let rows = try JSONRows.read(path)
        var pairs: [PreferencePair] = []
        var skipped = 0
        var survey = PreferenceFileSurvey()
        for row in rows {
            do {
                let p = try pair(from: row, path: path)
                pairs.append(p)
                survey.add(row, pair: p)
            } catch is DPOError where skipInvalid {
                skipped += 1
            }
        }
        if pairs.isEmpty {
            throw DPOError.file(path, skipped > 0 ? "all \(skipped) rows are invalid" : "no rows")
        }
        return (pairs, skipped, survey)
    }

    static func pair(from row: JSONRows.Row, path: String) throws -> PreferencePair {
        func fail(_ what: String) -> DPOError { DPOError("\(path):\(row.line): \(what)") }
        let value: Any
        switch row.value {
        case let .success(v): value = v
        case let .failure(error): throw error
        }
        guard let object = value as? [String: Any] else {
            throw fail("expected a JSON object with \"prompt\", \"chosen\" and \"rejected\"")
        }
        if object["chosen"] is [Any] { return try conversational(object, line: row.line, fail: fail) }
        func string(_ key: String) throws -> String? {
            guard let raw = object[key], !(raw is NSNull) else { return nil }
            guard let s = raw as? String else { throw fail("field \"\(key)\" must be a string") }
            return s
        }
        guard let chosen = try string("chosen") else { throw fail("missing field \"chosen\"") }
        guard let rejected = try string("rejected") else { throw fail("missing field \"rejected\"") }
        var result: PreferencePair
        if let prompt = try string("prompt") {
            result = PreferencePair(prompt: prompt, chosen: chosen, rejected: rejected, line: row.line)
        } else {
            result = implicitPrompt(chosen: chosen, rejected: rejected, line: row.line)
        }
        if result.chosen.isEmpty { throw fail("field \"chosen\" is an empty completion") }
        if result.rejected.isEmpty { throw fail("field \"rejected\" is an empty completion") }
        return result
    }

    /// A row whose completions are lists of messages; without "prompt", the prompt is the messages
    /// the two share at the start (TRL's `extract_prompt` over turns).
    static func conversational(_ object: [String: Any], line: Int, fail: (String) -> DPOError) throws -> PreferencePair {
        guard let chosenValue = object["chosen"] else { throw fail("missing field \"chosen\"") }
        guard let rejectedValue = object["rejected"] else { throw fail("missing field \"rejected\"") }
        var chosen = try ChatRendering.messages(chosenValue, field: "chosen", fail: fail)
        var rejected = try ChatRendering.messages(rejectedValue, field: "rejected", fail: fail)
        var prompt: [ChatMessage]
        if let promptValue = object["prompt"], !(promptValue is NSNull) {
            prompt = try ChatRendering.messages(promptValue, field: "prompt", fail: fail)
        } else {
            var shared = 0
            while shared < min(chosen.count, rejected.count) - 1, chosen[shared] == rejected[shared] { shared += 1 }
            prompt = Array(chosen[..<shared])
            chosen = Array(chosen[shared...])
            rejected = Array(rejected[shared...])
        }
        if chosen.isEmpty { throw fail("field \"chosen\" has no messages after the prompt") }
        if rejected.isEmpty { throw fail("field \"rejected\" has no messages after the prompt") }
        func text(_ m: [ChatMessage]) -> String { m.map(\.content).joined(separator: "\n") }
        var pair = PreferencePair(prompt: text(prompt), chosen: text(chosen), rejected: text(rejected), line: line)
        pair.conversation = PreferencePair.Conversation(prompt: prompt, chosen: chosen, rejected: rejected)
        return pair
    }

    /// TRL's `extract_prompt` for plain text: the common prefix of chosen and rejected, less a
    /// trailing space that then starts both completions. As in TRL, when one text is a prefix of the
    /// other the prompt stops one character short of it, so neither completion is empty.
    public static func implicitPrompt(chosen: String, rejected: String, line: Int = 0) -> PreferencePair {
        let c = Array(chosen), r = Array(rejected)
        let n = min(c.count, r.count)
        var idx = 0
        while idx < n, c[idx] == r[idx] { idx += 1 }
        if idx == n {
            idx = max(n - 1, 0)
        } else if idx > 0, c[idx - 1] == " " {
            idx -= 1
        }
        return PreferencePair(prompt: String(c[..<idx]), chosen: String(c[idx...]), rejected: String(r[idx...]), line: line)
    }
}
