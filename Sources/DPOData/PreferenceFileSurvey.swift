import DPOSupport
import Foundation

/// What a preference file's rows hold beyond the pairs they become: fields the trainer never reads,
/// and rows whose prompt is implicit (no "prompt": the common prefix of chosen and rejected, as
/// TRL's `extract_prompt`). A file of `{"question","chosen","rejected"}` rows trains without its
/// questions, each pair with a prompt of a few shared characters or none; nothing fails, so it is
/// said here, by `dpo-dist inspect` and at the start of `train`.
public struct PreferenceFileSurvey: Sendable {
    /// The fields of a preference row that are read.
    public static let usedFields: Set<String> = ["prompt", "chosen", "rejected"]
    /// An implicit prompt shorter than this (in characters, after trimming white space) is named
    /// as suspicious: a real prompt is rarely that short, a prefix two unrelated answers share often is.
    public static let shortPromptCharacters = 10
    /// Line numbers quoted per warning.
    static let linesQuoted = 5

    /// Valid rows (the ones `PreferenceFile.load` turns into pairs).
    public private(set) var rows = 0
    /// Each unused field and how many rows carry it.
    public private(set) var unusedFields: [String: Int] = [:]
    public private(set) var implicitPrompts = 0
    /// Implicit prompts that are empty (plain text: no shared prefix; conversational: no shared turn).
    public private(set) var emptyImplicitPrompts = 0
    public private(set) var emptyImplicitPromptLines: [Int] = []
    /// Non-empty implicit prompts shorter than `shortPromptCharacters`.
    public private(set) var shortImplicitPrompts = 0
    public private(set) var shortImplicitPromptLines: [Int] = []

    /// Nothing surveyed yet; `PreferenceFile.loadSurveyed` adds each row it reads.
    public init() {}

    /// The survey of `path`'s valid rows, read as `PreferenceFile.load` reads them (rows it would
    /// refuse or skip are not counted here; the load reports them).
    public init(path: String) throws {
        self = try PreferenceFile.loadSurveyed(path, skipInvalid: true).survey
    }

    /// One valid row and the pair it became.
    mutating func add(_ row: JSONRows.Row, pair: PreferencePair) {
        guard case let .success(value) = row.value, let object = value as? [String: Any] else { return }
        rows += 1
        for key in object.keys where !Self.usedFields.contains(key) { unusedFields[key, default: 0] += 1 }
        guard object["prompt"] == nil || object["prompt"] is NSNull else { return }
        implicitPrompts += 1
        let empty: Bool, short: Bool
        if let conversation = pair.conversation {
            empty = conversation.prompt.isEmpty
            short = false
        } else {
            let trimmed = pair.prompt.trimmingCharacters(in: .whitespacesAndNewlines)
            empty = trimmed.isEmpty
            short = !empty && trimmed.count < Self.shortPromptCharacters
        }
        if empty {
            emptyImplicitPrompts += 1
            if emptyImplicitPromptLines.count < Self.linesQuoted { emptyImplicitPromptLines.append(row.line) }
        } else if short {
            shortImplicitPrompts += 1
            if shortImplicitPromptLines.count < Self.linesQuoted { shortImplicitPromptLines.append(row.line) }
        }
    }

    /// One line per problem, each starting with "warning: PATH: ".
    public func warnings(path: String) -> [String] {
        var lines: [String] = []
        func lineList(_ quoted: [Int], of total: Int) -> String {
            let list = quoted.map(String.init).joined(separator: ", ")
            return (quoted.count == 1 ? "line " : "lines ") + list + (total > quoted.count ? ", …" : "")
        }
        if !unusedFields.isEmpty {
            let fields = unusedFields.sorted { $0.key < $1.key }.map { "\"\($0.key)\" (\($0.value) row\($0.value == 1 ? "" : "s"))" }
            lines.append("warning: \(path): field\(unusedFields.count == 1 ? "" : "s") \(fields.joined(separator: ", ")) "
                         + "not used: only \"prompt\", \"chosen\" and \"rejected\" are read")
        }
        // A file of implicit prompts only is a known format (TRL's extract_prompt); said when something looks off.
        if implicitPrompts > 0, !unusedFields.isEmpty || emptyImplicitPrompts + shortImplicitPrompts > 0 {
            lines.append("warning: \(path): \(implicitPrompts) of \(rows) row(s) have no \"prompt\": each trains with the "
                         + "common prefix of chosen and rejected as its prompt (name the prompt field \"prompt\" if the rows have one)")
        }
        if emptyImplicitPrompts > 0 {
            lines.append("warning: \(path): \(emptyImplicitPrompts) implicit prompt(s) are empty (chosen and rejected share no start), "
                         + lineList(emptyImplicitPromptLines, of: emptyImplicitPrompts))
        }
        if shortImplicitPrompts > 0 {
            lines.append("warning: \(path): \(shortImplicitPrompts) implicit prompt(s) are shorter than \(Self.shortPromptCharacters) characters, "
                         + lineList(shortImplicitPromptLines, of: shortImplicitPrompts))
        }
        return lines
    }

    /// `max_length` above the model's `max_position_embeddings`: positions past it were never
    /// trained (RoPE extrapolates, quality drops), so TRL users are told rather than refused, with how
    /// many of `pairs` (nil: not known) reach past it.
    public static func lengthWarning(maxLength: Int?, maxPositionEmbeddings: Int, pairs: [TokenizedPair]?) -> String? {
        guard maxLength ?? Int.max > maxPositionEmbeddings else { return nil }
        var line = "warning: max_length \(maxLength.map(String.init) ?? "null") is above the model's max_position_embeddings "
            + "\(maxPositionEmbeddings): a longer sequence uses positions the model was never trained on"
        if let pairs {
            let longer = pairs.filter { max($0.chosen.count, $0.rejected.count) > maxPositionEmbeddings }.count
            line += longer == 0 ? " (no pair here is longer)" : " (\(longer) pair(s) here are)"
        }
        return line
    }
}
