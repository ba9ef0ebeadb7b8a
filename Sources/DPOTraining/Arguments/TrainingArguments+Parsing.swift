import DPOSupport
import Foundation
import Yams

// Reading `TrainingArguments` from a YAML file and command-line flags, checking them before any work
// starts, and writing them back as YAML. Keys are TRL's field names in snake_case; a flag overrides the file.

extension TrainingArguments {
    /// The command the arguments are for: validation and the learning-rate default depend on it.
    public enum Command: String, Sendable, CaseIterable {
        case dpo, sft
    }

    /// The `source` that `set` is given for values from flags. Its errors then name the flag
    /// (`--beta`) rather than the YAML key (`beta`), since that is what the user typed.
    public static let commandLine = "command line"

    /// The YAML keys, one per field, in the order `yaml` writes them.
    public static let keys: [String] = fields.map(\.key)

    /// The names `loss_type` accepts (TRL 1.16's DPOTrainer names, plus CPO's `simpo` and ORPO's `orpo`).
    public static let lossTypes = PreferenceLossType.allCases.map(\.rawValue)
    public static let lrSchedulerTypes = LearningRateSchedule.Kind.allCases.map(\.rawValue)
    public static let saveDtypes = SaveDType.allCases.map(\.rawValue)

    /// TRL's defaults for the command. They differ only in the learning rate: SFTConfig's is 2e-5,
    /// DPOConfig's 1e-6 (a DPO learning rate would leave SFT almost where it started).
    public static func defaults(for command: Command) -> TrainingArguments {
        var arguments = TrainingArguments()
        if command == .sft { arguments.learningRate = 2e-5 }
        return arguments
    }

    /// Whether the configured loss needs reference log-probs (a reference model or precomputed ones).
    /// A name that is no loss counts as needing one (validation refuses it anyway).
    public var usesReferenceModel: Bool {
        lossType.contains { PreferenceLossType(rawValue: $0)?.usesReference ?? true }
    }

    // MARK: - Typed values (after `validate(for:)`, which refuses names that are none of these)

    /// `loss_type` as loss types.
    public var lossTypes: [PreferenceLossType] {
        get throws {
            try lossType.map { name in
                guard let t = PreferenceLossType(rawValue: name) else { throw DPOError("loss_type: unknown loss \"\(name)\"") }
                return t
            }
        }
    }

    /// `lr_scheduler_type` as a schedule kind.
    public var schedule: LearningRateSchedule.Kind {
        get throws {
            guard let kind = LearningRateSchedule.Kind(rawValue: lrSchedulerType) else {
                throw DPOError("lr_scheduler_type: unknown schedule \"\(lrSchedulerType)\"")
            }
            return kind
        }
    }

    /// `save_dtype` as a dtype.
    public var savedDType: SaveDType {
        get throws {
            guard let dtype = SaveDType(name: saveDtype) else { throw DPOError("save_dtype: unknown dtype \"\(saveDtype)\"") }
            return dtype
        }
    }

    // MARK: - Setting one key

    /// Sets one field from a YAML value (`String`, `Int`, `Double`, `Bool`, `NSNull` or `[Any]`) or from
    /// the text of a flag. Text is read as the YAML would be: "0.1", "true", "null", "sigmoid,hinge".
    /// `source` names where the value came from ("dpo.yaml:3" or `commandLine`) for the error.
    /// A TRL key dpo-dist has no field for (`trlOnlyKeys`) sets nothing: a value that changes nothing
    /// here returns the one-line note to show, any other is refused.
    @discardableResult
    public mutating func set(_ key: String, _ value: Any, source: String) throws -> String? {
        let value = ArgumentValue(value, name: source == Self.commandLine ? "--" + Self.flagName(key) : key, source: source)
        let key = Self.keyAliases[key] ?? key
        guard let field = Self.fields.first(where: { $0.key == key })?.field else {
            if let note = try Self.trlOnly(key, value) { return note }
            throw Self.unknownKey(key, source: source)
        }
        switch field {
        case .string(let path): self[keyPath: path] = try value.string()
        case .optionalString(let path): self[keyPath: path] = value.isNull ? nil : try value.string()
        case .number(let path): self[keyPath: path] = try value.number()
        case .integer(let path): self[keyPath: path] = try value.integer()
        case .optionalInteger(let path): self[keyPath: path] = value.isNull ? nil : try value.integer()
        case .seed(let path): self[keyPath: path] = try value.seed()
        case .flag(let path): self[keyPath: path] = try value.bool()
        case .names(let path): self[keyPath: path] = try value.names()
        case .optionalNames(let path): self[keyPath: path] = value.isNull ? nil : try value.names()
        case .optionalNumbers(let path): self[keyPath: path] = value.isNull ? nil : try value.numbers()
        }
        // One spelling in the saved YAML and for every later check, whichever alias was typed.
        if key == "save_dtype" { saveDtype = SaveDType(name: saveDtype)?.rawValue ?? saveDtype }
        return nil
    }

    /// Other names of a key, that set its field as the key does: transformers 5 calls
    /// gradient_checkpointing activation_checkpointing (and keeps the old name as an alias).
    public static let keyAliases = ["activation_checkpointing": "gradient_checkpointing"]

    /// `learning_rate` → `learning-rate`.
    public static func flagName(_ key: String) -> String { key.replacingOccurrences(of: "_", with: "-") }

    // MARK: - Loading

    /// TRL's defaults for `command`, then the YAML file's keys, then the flags in the order given.
    /// Nothing is validated here: call `validate(for:)` on the result. `note` gets one line for each
    /// TRL key that was accepted but changes nothing (`fp16: false`, `report_to: none`).
    public static func load(yamlFile: String?, overrides: [(key: String, value: String)],
                            command: Command = .dpo, note: (String) -> Void = { _ in }) throws -> TrainingArguments {
        var arguments = defaults(for: command)
        if let yamlFile { try arguments.apply(yamlFile: yamlFile).forEach(note) }
        for (key, value) in overrides { try arguments.set(key, value, source: commandLine).map(note) }
        return arguments
    }

    /// Sets every key of a YAML mapping; the notes of the TRL keys that changed nothing. A file with
    /// only comments sets nothing (a template with everything commented out is a valid config);
    /// anything else that is not a mapping is refused.
    mutating func apply(yamlFile path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DPOError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw DPOError.file(path, "not valid UTF-8") }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw Self.parseError(error, path: path)
        }
        guard let root else { return [] }
        guard let mapping = root.mapping else {
            throw DPOError.file(path, "expected \"key: value\" lines (a YAML mapping), got \(root.sequence != nil ? "a list" : "a single value")")
        }
        var lineOfKey: [String: Int] = [:], keyOnLine: [Int: String] = [:]
        var notes: [String] = []
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard let key = keyNode.scalar?.string else {
                throw DPOError("\(path):\(line): a key must be a plain name such as learning_rate")
            }
            // libyaml keeps both entries of a repeated key; the later one would silently win. So would
            // the later of a key and its alias, unless they agree (TRL's saved configs write both).
            let field = Self.keyAliases[key] ?? key
            let first = lineOfKey[field], earlier = first.flatMap { keyOnLine[$0] }
            if let first, earlier == key {
                throw DPOError("\(path):\(line): duplicate key \"\(key)\" (first set on line \(first))")
            }
            let before = yamlValue(of: field)
            lineOfKey[field] = line
            keyOnLine[line] = key
            if let note = try set(key, Self.plainValue(valueNode), source: "\(path):\(line)") { notes.append(note) }
            if let first, let earlier, yamlValue(of: field) != before {
                throw DPOError("\(path):\(line): \(key) disagrees with \(earlier) on line \(first), which sets the same option; keep one of them")
            }
        }
        return notes
    }

    /// A YAML node as the plain values `set` takes. A quoted scalar stays a string, so `model: "2024"`
    /// is a path; a number key still reads a quoted number from its text.
    static func plainValue(_ node: Node) -> Any {
        if let scalar = node.scalar {
            switch node.tag.description {  // the resolved tag's name (Tag.name itself is not public in Yams 5)
            case Tag.Name.null.rawValue: return NSNull()
            case Tag.Name.bool.rawValue: return node.bool ?? scalar.string
            case Tag.Name.int.rawValue: return node.int ?? scalar.string
            case Tag.Name.float.rawValue: return node.float ?? scalar.string
            default: return scalar.string  // str, and timestamps such as a directory named 2024-05-01
            }
        }
        if let sequence = node.sequence { return sequence.map(plainValue) }
        // A mapping (or an alias): no field takes one (`ArgumentValue` says so), and a TRL key such as
        // lr_scheduler_kwargs only when it is empty, so its keys are kept and its values are not read.
        var mapping: [String: Any] = [:]
        for (key, _) in node.mapping ?? Node.Mapping([]) { mapping[key.scalar?.string ?? "?"] = NSNull() }
        return mapping
    }

    static func parseError(_ error: YamlError, path: String) -> DPOError {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            // libyaml's context says where the construct it was reading began (an unclosed quote, say).
            let started = context.map { " (\($0.text) on line \($0.mark.line))" } ?? ""
            return DPOError("\(path):\(mark.line):\(mark.column): not valid YAML: \(problem)\(started)")
        case .reader(let problem, _, _, _):
            return DPOError.file(path, "not valid YAML: \(problem)")
        default:
            return DPOError.file(path, "not valid YAML: \(String(describing: error).split(separator: "\n").first ?? "")")
        }
    }

    // MARK: - Unknown keys

    /// TRL options a user is likely to bring, with what to do in dpo-dist instead.
    static let trlHints: [String: String] = [
        "model_name_or_path": "dpo-dist calls it \"model\"",
        "lr": "did you mean \"learning_rate\"?",
        "dataset_name": "dpo-dist reads local files: use \"train_file\" (and \"eval_file\")",
        "dataset_path": "use \"train_file\" (and \"eval_file\")",
        "rpo_alpha": "TRL 1.x writes RPO as loss_type: [sigmoid, sft] with loss_weights: [1.0, alpha]",
        "max_completion_length": "max_length limits prompt + completion, max_prompt_length the prompt",
        "max_seq_length": "TRL 1.x calls it max_length",
    ]

    static func unknownKey(_ key: String, source: String) -> DPOError {
        let onCommandLine = source == commandLine
        var message = onCommandLine ? "\(source): unknown option --\(flagName(key))" : "\(source): unknown key \"\(key)\""
        if let hint = trlHints[key] {
            message += " (\(hint))"
        } else if let near = nearestName(to: key, in: keys) {
            message += onCommandLine ? " (did you mean --\(flagName(near))?)" : " (did you mean \"\(near)\"?)"
        }
        return DPOError(message)
    }

    /// The closest name by edit distance, if it is close enough to be a typo (a third of the name's length).
    static func nearestName(to name: String, in names: [String]) -> String? {
        let wanted = name.lowercased().replacingOccurrences(of: "-", with: "_")
        let scored = names.map { (name: $0, distance: editDistance(wanted, $0)) }
        guard let best = scored.min(by: { $0.distance < $1.distance }),
              best.distance <= max(2, wanted.count / 3) else { return nil }
        return best.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)  // distances from a's first i characters to each prefix of b
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }

    // MARK: - Writing back

    /// Every key in the order of `keys`, one `key: value` line each, readable by `load` and by PyYAML
    /// (floats always carry a '.', strings are double-quoted). Ranks compare this text to agree on a config.
    public var yaml: String {
        Self.fields.map { key, field in "\(key): \(yamlText(field))\n" }.joined()
    }

    /// One key's value as `yaml` writes it (nil for a key that is none of `keys`).
    public func yamlValue(of key: String) -> String? {
        Self.fields.first { $0.key == key }.map { yamlText($0.field) }
    }

    private func yamlText(_ field: Field) -> String {
        switch field {
        case .string(let path): return quotedJSONString(self[keyPath: path])
        case .optionalString(let path): return self[keyPath: path].map(quotedJSONString) ?? "null"
        case .number(let path): return Self.yamlNumber(self[keyPath: path])
        case .integer(let path): return String(self[keyPath: path])
        case .optionalInteger(let path): return self[keyPath: path].map(String.init) ?? "null"
        case .seed(let path): return String(self[keyPath: path])
        case .flag(let path): return String(self[keyPath: path])
        case .names(let path): return "[" + self[keyPath: path].map(quotedJSONString).joined(separator: ", ") + "]"
        case .optionalNames(let path): return self[keyPath: path].map { "[" + $0.map(quotedJSONString).joined(separator: ", ") + "]" } ?? "null"
        case .optionalNumbers(let path):
            return self[keyPath: path].map { "[" + $0.map(Self.yamlNumber).joined(separator: ", ") + "]" } ?? "null"
        }
    }

    /// Swift's shortest round-trip form, with ".0" before a bare exponent: PyYAML (YAML 1.1) reads "5e-07" as text.
    static func yamlNumber(_ x: Double) -> String {
        if x.isNaN { return ".nan" }
        if x.isInfinite { return x < 0 ? "-.inf" : ".inf" }
        let text = "\(x)"
        guard !text.contains("."), let e = text.firstIndex(of: "e") else { return text }
        return String(text[..<e]) + ".0" + text[e...]
    }
}
