import ChatTemplates
import DPOSupport
import Foundation
import Tokenization

/// One preference example: a prompt and two completions, the chosen one preferred.
public struct PreferencePair: Equatable, Sendable {
    public var prompt: String
    public var chosen: String
    public var rejected: String
    /// 1-based line (JSONL) or element (JSON array) number in the source file, for messages.
    public var line: Int
    /// Conversational rows: the messages, rendered with the model's chat template when tokenized.
    /// `prompt`/`chosen`/`rejected` then hold the messages' contents joined, for messages and checks.
    public var conversation: Conversation?

    public struct Conversation: Equatable, Sendable {
        public var prompt: [ChatMessage]
        public var chosen: [ChatMessage]
        public var rejected: [ChatMessage]
    }

    public init(prompt: String, chosen: String, rejected: String, line: Int = 0) {
        self.prompt = prompt; self.chosen = chosen; self.rejected = rejected; self.line = line
    }
}

/// Reading preference files: JSONL (one object per line) or a JSON array of objects, with
/// `{"prompt", "chosen", "rejected"}` (standard) or only `{"chosen", "rejected"}` (implicit prompt:
/// the longest common prefix, as TRL's `extract_prompt`).
public enum PreferenceFile {
    /// Reads and checks every row. A bad row stops with `FILE:LINE: what is wrong` unless
    /// `skipInvalid`, which drops it and counts it in `skipped`.
    public static func load(_ path: String, skipInvalid: Bool = false) throws -> (pairs: [PreferencePair], skipped: Int) {
        let rows = try JSONRows.read(path)
        var pairs: [PreferencePair] = []
        var skipped = 0
        for row in rows {
            do {
                pairs.append(try pair(from: row, path: path))
            } catch is DPOError where skipInvalid {
                skipped += 1
            }
        }
        if pairs.isEmpty {
            throw DPOError.file(path, skipped > 0 ? "all \(skipped) rows are invalid" : "no rows")
        }
        return (pairs, skipped)
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

/// Rows of a JSONL file or of a JSON array file, each with its 1-based line (or element) number.
public enum JSONRows {
    /// A row's parsed value, or why its line could not be parsed (the caller decides whether to skip it).
    public struct Row { public let line: Int; public let value: Result<Any, DPOError> }

    public static func read(_ path: String) throws -> [Row] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DPOError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        if data.isEmpty || data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw DPOError.file(path, "the file is empty")
        }
        if data.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "[") {
            guard String(data: data, encoding: .utf8) != nil else { throw DPOError.file(path, "not valid UTF-8") }
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw DPOError.file(path, "starts with '[' but is not a valid JSON array")
            }
            return array.enumerated().map { Row(line: $0.offset + 1, value: .success($0.element)) }
        }
        var rows: [Row] = []
        var lineNumber = 0
        for lineData in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            var bytes = lineData
            if bytes.last == 0x0D { bytes = bytes.dropLast() }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard String(data: Data(bytes), encoding: .utf8) != nil else {
                rows.append(Row(line: lineNumber, value: .failure(DPOError("\(path):\(lineNumber): not valid UTF-8"))))
                continue
            }
            if let value = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) {
                rows.append(Row(line: lineNumber, value: .success(value)))
            } else {
                rows.append(Row(line: lineNumber, value: .failure(DPOError("\(path):\(lineNumber): malformed JSON"))))
            }
        }
        return rows
    }
}
