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

    /// The loss types `loss_type` accepts (TRL 1.16's DPOTrainer names, plus CPO's `simpo` and ORPO's `orpo`).
    public static let lossTypes = [
        "sigmoid", "hinge", "ipo", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "aot",
        "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm", "sft", "simpo", "orpo",
    ]
    /// Loss types that never look at a reference model. `simpo` and `orpo` combine only with these: mixed with a
    /// reference-based type, the run would have to keep a reference only for part of the loss, and
    /// TRL has no such combination either (SimPO and ORPO live in their own trainers there).
    public static let referenceFreeLossTypes: Set<String> = ["simpo", "orpo", "sft"]
    public static let lrSchedulerTypes = ["constant", "constant_with_warmup", "linear", "cosine"]
    public static let saveDtypes = ["float32", "bfloat16"]

    /// TRL's defaults for the command. They differ only in the learning rate: SFTConfig's is 2e-5,
    /// DPOConfig's 1e-6 (a DPO learning rate would leave SFT almost where it started).
    public static func defaults(for command: Command) -> TrainingArguments {
        var arguments = TrainingArguments()
        if command == .sft { arguments.learningRate = 2e-5 }
        return arguments
    }

    /// Whether the configured loss needs reference log-probs (a reference model or precomputed ones).
    public var usesReferenceModel: Bool {
        !lossType.allSatisfy(Self.referenceFreeLossTypes.contains)
    }

    // MARK: - Setting one key

    /// Sets one field from a YAML value (`String`, `Int`, `Double`, `Bool`, `NSNull` or `[Any]`) or from
    /// the text of a flag. Text is read as the YAML would be: "0.1", "true", "null", "sigmoid,hinge".
    /// `source` names where the value came from ("dpo.yaml:3" or `commandLine`) for the error.
    public mutating func set(_ key: String, _ value: Any, source: String) throws {
        guard let field = Self.fields.first(where: { $0.key == key })?.field else {
            throw Self.unknownKey(key, source: source)
        }
        let value = Value(value, name: source == Self.commandLine ? "--" + Self.flagName(key) : key, source: source)
        switch field {
        case .string(let path): self[keyPath: path] = try value.string()
        case .optionalString(let path): self[keyPath: path] = value.isNull ? nil : try value.string()
        case .number(let path): self[keyPath: path] = try value.number()
        case .integer(let path): self[keyPath: path] = try value.integer()
        case .optionalInteger(let path): self[keyPath: path] = value.isNull ? nil : try value.integer()
        case .seed(let path): self[keyPath: path] = try value.seed()
        case .flag(let path): self[keyPath: path] = try value.bool()
        case .names(let path): self[keyPath: path] = try value.names()
        case .optionalNumbers(let path): self[keyPath: path] = value.isNull ? nil : try value.numbers()
        }
        // One spelling in the saved YAML and for every later check, whichever alias was typed.
        if key == "save_dtype" { saveDtype = Self.saveDtypeAliases[saveDtype.lowercased()] ?? saveDtype }
    }

    static let saveDtypeAliases = ["float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16"]

    /// `learning_rate` → `learning-rate`.
    public static func flagName(_ key: String) -> String { key.replacingOccurrences(of: "_", with: "-") }

    // MARK: - Loading

    /// TRL's defaults for `command`, then the YAML file's keys, then the flags in the order given.
    /// Nothing is validated here: call `validate(for:)` on the result.
    public static func load(yamlFile: String?, overrides: [(key: String, value: String)],
                            command: Command = .dpo) throws -> TrainingArguments {
        var arguments = defaults(for: command)
        if let yamlFile { try arguments.apply(yamlFile: yamlFile) }
        for (key, value) in overrides { try arguments.set(key, value, source: commandLine) }
        return arguments
    }

    /// Sets every key of a YAML mapping. A file with only comments sets nothing (a template with
    /// everything commented out is a valid config); anything else that is not a mapping is refused.
    mutating func apply(yamlFile path: String) throws {
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
        guard let root else { return }
        guard let mapping = root.mapping else {
            throw DPOError.file(path, "expected \"key: value\" lines (a YAML mapping), got \(root.sequence != nil ? "a list" : "a single value")")
        }
        var lineOfKey: [String: Int] = [:]
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard let key = keyNode.scalar?.string else {
                throw DPOError("\(path):\(line): a key must be a plain name such as learning_rate")
            }
            // libyaml keeps both entries of a repeated key; the later one would silently win.
            if let first = lineOfKey[key] {
                throw DPOError("\(path):\(line): duplicate key \"\(key)\" (first set on line \(first))")
            }
            lineOfKey[key] = line
            try set(key, Self.plainValue(valueNode), source: "\(path):\(line)")
        }
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
        return [String: Any]()  // a mapping (or an alias): no key takes one, and `Value` says so
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
        "bf16": "dpo-dist computes in float32; \"save_dtype: bfloat16\" saves bf16 weights",
        "fp16": "dpo-dist computes in float32; \"save_dtype: bfloat16\" saves bf16 weights",
        "tf32": "dpo-dist computes in float32 with OpenBLAS",
        "optim": "dpo-dist always uses AdamW (adam_beta1, adam_beta2, adam_epsilon, weight_decay)",
        "gradient_checkpointing": "not supported yet",
        "rpo_alpha": "TRL 1.x writes RPO as loss_type: [sigmoid, sft] with loss_weights: [1.0, alpha]",
        "reference_free": "use a reference-free loss_type (simpo or orpo)",
        "eval_strategy": "set eval_steps to evaluate every N steps; without it the eval runs at the end",
        "evaluation_strategy": "set eval_steps to evaluate every N steps; without it the eval runs at the end",
        "save_strategy": "set save_steps to save every N steps; without it only the final model is saved",
        "max_completion_length": "max_length limits prompt + completion, max_prompt_length the prompt",
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

    // MARK: - Validation

    /// Refuses values that cannot work, naming the key, before any model or data is loaded.
    /// For `.sft` the DPO-only keys (beta, loss_type, loss_weights, label_smoothing, simpo_gamma, orpo_alpha,
    /// discopop_tau, ref_model, precompute_ref_log_probs, max_prompt_length) are not checked: SFT ignores them.
    /// `completion_only_loss` is SFT's only and DPO ignores it.
    public func validate(for command: Command) throws {
        for (key, value) in [("model", model), ("train_file", trainFile), ("output_dir", outputDir)] {
            try check(!value.isEmpty, "\(key) is required (--\(Self.flagName(key)), or \"\(key):\" in the --config file)")
        }

        try check(learningRate >= 0 && learningRate.isFinite, "learning_rate must be at least 0, got \(learningRate)")
        try check(Self.lrSchedulerTypes.contains(lrSchedulerType),
                  "lr_scheduler_type must be one of \(Self.lrSchedulerTypes.joined(separator: ", ")), got \"\(lrSchedulerType)\"")
        try check((0...1).contains(warmupRatio), "warmup_ratio must be in [0, 1], got \(warmupRatio)")
        try check(warmupSteps >= 0, "warmup_steps must be at least 0, got \(warmupSteps)")
        try check(weightDecay >= 0 && weightDecay.isFinite, "weight_decay must be at least 0, got \(weightDecay)")
        try check((0..<1).contains(adamBeta1), "adam_beta1 must be in [0, 1), got \(adamBeta1)")
        try check((0..<1).contains(adamBeta2), "adam_beta2 must be in [0, 1), got \(adamBeta2)")
        try check(adamEpsilon > 0 && adamEpsilon.isFinite, "adam_epsilon must be greater than 0, got \(adamEpsilon)")
        try check(maxGradNorm >= 0 && maxGradNorm.isFinite, "max_grad_norm must be at least 0 (0: no clipping), got \(maxGradNorm)")

        try check(perDeviceTrainBatchSize >= 1, "per_device_train_batch_size must be at least 1, got \(perDeviceTrainBatchSize)")
        try check(perDeviceEvalBatchSize >= 1, "per_device_eval_batch_size must be at least 1, got \(perDeviceEvalBatchSize)")
        try check(gradientAccumulationSteps >= 1, "gradient_accumulation_steps must be at least 1, got \(gradientAccumulationSteps)")
        if maxSteps <= 0 {
            try check(numTrainEpochs > 0 && numTrainEpochs.isFinite,
                      "num_train_epochs must be greater than 0 (or max_steps above 0), got \(numTrainEpochs)")
        }
        if let maxLength { try check(maxLength >= 2, "max_length must be at least 2 (or null for no limit), got \(maxLength)") }

        try check(loggingSteps >= 1, "logging_steps must be at least 1, got \(loggingSteps)")
        for (key, value) in [("eval_steps", evalSteps), ("save_steps", saveSteps), ("save_total_limit", saveTotalLimit)] {
            if let value { try check(value >= 1, "\(key) must be at least 1 (or null), got \(value)") }
        }
        // TRL refuses step-wise evaluation without an eval dataset; failing at the first eval would waste the run.
        if let evalSteps { try check(evalFile != nil, "eval_steps is \(evalSteps) but no eval_file is given") }
        try check(Self.saveDtypes.contains(saveDtype), "save_dtype must be float32 or bfloat16 (or fp32, bf16), got \"\(saveDtype)\"")
        try check(maxNewTokens >= 0, "max_new_tokens must be at least 0, got \(maxNewTokens)")

        if command == .dpo { try validateDPO() }
    }

    private func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
        if !ok { throw DPOError(message()) }
    }

    private func validateDPO() throws {
        try check(beta > 0 && beta.isFinite, "beta must be greater than 0, got \(beta)")

        try check(!lossType.isEmpty, "loss_type must name at least one loss")
        for name in lossType {
            let hint = Self.nearestName(to: name, in: Self.lossTypes).map { " (did you mean \"\($0)\"?)" } ?? ""
            try check(Self.lossTypes.contains(name), "loss_type \"\(name)\" is not a known loss\(hint); known: \(Self.lossTypes.joined(separator: ", "))")
            try check(lossType.filter { $0 == name }.count == 1, "loss_type names \"\(name)\" twice")
        }
        if let referenceFree = lossType.first(where: { $0 == "simpo" || $0 == "orpo" }) {
            let referenceBased = lossType.filter { !Self.referenceFreeLossTypes.contains($0) }
            try check(referenceBased.isEmpty,
                      "loss_type \"\(referenceFree)\" is reference-free and cannot be combined with reference-based \(referenceBased.joined(separator: ", ")) (it may be combined with simpo, orpo, sft)")
        }
        if !usesReferenceModel {
            let types = lossType.joined(separator: ", ")
            try check(refModel == nil, "ref_model is set but loss_type \(types) uses no reference model; remove ref_model")
            try check(!precomputeRefLogProbs, "precompute_ref_log_probs is set but loss_type \(types) uses no reference model")
        }

        if let lossWeights {
            try check(lossWeights.count == lossType.count,
                      "loss_weights has \(lossWeights.count) weight(s) but loss_type has \(lossType.count) loss(es); give one weight per loss type")
            for weight in lossWeights {
                try check(weight >= 0 && weight.isFinite, "loss_weights must be at least 0, got \(weight)")
            }
        }
        try check((0..<0.5).contains(labelSmoothing), "label_smoothing must be in [0, 0.5), got \(labelSmoothing)")
        if lossType.contains("exo_pair") {
            try check(labelSmoothing > 0, "label_smoothing must be greater than 0 for loss_type exo_pair (it is EXO's epsilon, which enters a log)")
        }
        if lossType.contains("discopop") {
            try check(discopopTau > 0 && discopopTau.isFinite, "discopop_tau must be greater than 0, got \(discopopTau)")
        }
        if lossType.contains("orpo") {
            try check(orpoAlpha >= 0 && orpoAlpha.isFinite, "orpo_alpha must be at least 0, got \(orpoAlpha)")
        }

        if let maxPromptLength {
            try check(maxPromptLength >= 1, "max_prompt_length must be at least 1 (or null for no limit), got \(maxPromptLength)")
            if let maxLength {
                try check(maxPromptLength < maxLength,
                          "max_prompt_length (\(maxPromptLength)) must be less than max_length (\(maxLength)), leaving room for the completion")
            }
        }
    }

    // MARK: - Writing back

    /// Every key in the order of `keys`, one `key: value` line each, readable by `load` and by PyYAML
    /// (floats always carry a '.', strings are double-quoted). Ranks compare this text to agree on a config.
    public var yaml: String {
        Self.fields.map { key, field in "\(key): \(yamlText(field))\n" }.joined()
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

// MARK: - The key table

extension TrainingArguments {
    /// How a key reads and writes its field. One table drives `keys`, `set` and `yaml`, so they cannot drift apart.
    enum Field {
        case string(WritableKeyPath<TrainingArguments, String>)
        case optionalString(WritableKeyPath<TrainingArguments, String?>)
        case number(WritableKeyPath<TrainingArguments, Double>)
        case integer(WritableKeyPath<TrainingArguments, Int>)
        case optionalInteger(WritableKeyPath<TrainingArguments, Int?>)
        case seed(WritableKeyPath<TrainingArguments, UInt64>)
        case flag(WritableKeyPath<TrainingArguments, Bool>)
        case names(WritableKeyPath<TrainingArguments, [String]>)
        case optionalNumbers(WritableKeyPath<TrainingArguments, [Double]?>)
    }

    static let fields: [(key: String, field: Field)] = [
        ("model", .string(\.model)),
        ("ref_model", .optionalString(\.refModel)),
        ("train_file", .string(\.trainFile)),
        ("eval_file", .optionalString(\.evalFile)),
        ("output_dir", .string(\.outputDir)),
        ("beta", .number(\.beta)),
        ("loss_type", .names(\.lossType)),
        ("loss_weights", .optionalNumbers(\.lossWeights)),
        ("label_smoothing", .number(\.labelSmoothing)),
        ("simpo_gamma", .number(\.simpoGamma)),
        ("orpo_alpha", .number(\.orpoAlpha)),
        ("discopop_tau", .number(\.discopopTau)),
        ("learning_rate", .number(\.learningRate)),
        ("lr_scheduler_type", .string(\.lrSchedulerType)),
        ("warmup_ratio", .number(\.warmupRatio)),
        ("warmup_steps", .integer(\.warmupSteps)),
        ("weight_decay", .number(\.weightDecay)),
        ("adam_beta1", .number(\.adamBeta1)),
        ("adam_beta2", .number(\.adamBeta2)),
        ("adam_epsilon", .number(\.adamEpsilon)),
        ("max_grad_norm", .number(\.maxGradNorm)),
        ("per_device_train_batch_size", .integer(\.perDeviceTrainBatchSize)),
        ("per_device_eval_batch_size", .integer(\.perDeviceEvalBatchSize)),
        ("gradient_accumulation_steps", .integer(\.gradientAccumulationSteps)),
        ("num_train_epochs", .number(\.numTrainEpochs)),
        ("max_steps", .integer(\.maxSteps)),
        ("max_length", .optionalInteger(\.maxLength)),
        ("max_prompt_length", .optionalInteger(\.maxPromptLength)),
        ("seed", .seed(\.seed)),
        ("shuffle", .flag(\.shuffle)),
        ("logging_steps", .integer(\.loggingSteps)),
        ("eval_steps", .optionalInteger(\.evalSteps)),
        ("save_steps", .optionalInteger(\.saveSteps)),
        ("save_total_limit", .optionalInteger(\.saveTotalLimit)),
        ("resume_from_checkpoint", .optionalString(\.resumeFromCheckpoint)),
        ("precompute_ref_log_probs", .flag(\.precomputeRefLogProbs)),
        ("save_dtype", .string(\.saveDtype)),
        ("max_new_tokens", .integer(\.maxNewTokens)),
        ("skip_invalid_rows", .flag(\.skipInvalidRows)),
        ("completion_only_loss", .flag(\.completionOnlyLoss)),
    ]
}

// MARK: - Reading one value

/// A value from YAML (typed) or a flag (text), read as the type a field needs. Text is read the way
/// YAML would read it, so `--beta 0.1` and `beta: 0.1` mean the same.
private struct Value {
    let raw: Any
    /// What the user typed to name it: `--beta` on the command line, `beta` in a file.
    let name: String
    let source: String

    init(_ raw: Any, name: String, source: String) {
        self.raw = raw
        self.name = name
        self.source = source
    }

    func fail(_ expected: String, _ hint: String = "") -> DPOError {
        DPOError("\(source): \(name) must be \(expected), got \(Self.describe(raw))\(hint)")
    }

    static func describe(_ value: Any) -> String {
        switch value {
        case let s as String: return "\"\(s)\""
        case is NSNull: return "null"
        case is [Any]: return "a list"
        case is [String: Any]: return "a mapping"
        default: return "\(value)"
        }
    }

    private var text: String? { (raw as? String)?.trimmingCharacters(in: .whitespaces) }

    /// null, ~, none or nothing: "not set" for the optional keys (None is how TRL users write it).
    /// So an optional path cannot be a file literally named "none" or "null"; write "./none".
    var isNull: Bool {
        if raw is NSNull { return true }
        guard let text else { return false }
        return ["", "~", "null", "none"].contains(text.lowercased())
    }

    func string() throws -> String {
        guard let s = raw as? String else { throw fail("text", raw is [Any] || raw is [String: Any] ? "" : " (put it in quotes)") }
        return s
    }

    func number() throws -> Double {
        let x: Double?
        switch raw {
        case let d as Double: x = d
        case let i as Int: x = Double(i)
        default: x = text.flatMap(Double.init)
        }
        guard let x, x.isFinite else { throw fail(x == nil ? "a number" : "a finite number") }
        return x
    }

    func integer() throws -> Int {
        switch raw {
        case let i as Int: return i
        case let d as Double:
            // 1e3 or 4.0 in a file mean a whole number; 0.5 steps do not.
            guard d.rounded() == d, let i = Int(exactly: d) else { throw fail("a whole number") }
            return i
        default:
            if let text, let i = Int(text) { return i }
            if let text, let d = Double(text), d.rounded() == d, let i = Int(exactly: d) { return i }
            throw fail("a whole number")
        }
    }

    func seed() throws -> UInt64 {
        if let i = raw as? Int, i >= 0 { return UInt64(i) }
        if let text, let s = UInt64(text) { return s }
        throw fail("a whole number of at least 0")
    }

    func bool() throws -> Bool {
        switch raw {
        case let b as Bool: return b
        case let i as Int where i == 0 || i == 1: return i == 1
        default:
            switch text?.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw fail("true or false")
            }
        }
    }

    /// A list, or one string with names separated by commas (how a flag gives a list).
    func names() throws -> [String] {
        let items: [Any]
        if let list = raw as? [Any] {
            items = list
        } else if let text {
            items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        } else {
            throw fail("a name or a list of names")
        }
        let names = try items.map { item -> String in
            guard let s = (item as? String)?.trimmingCharacters(in: .whitespaces), !s.isEmpty else {
                throw fail("a name or a list of names")
            }
            return s
        }
        guard !names.isEmpty else { throw fail("a name or a list of names") }
        return names
    }

    /// A list, one number, or one string of numbers separated by commas.
    func numbers() throws -> [Double] {
        let items: [Any]
        switch raw {
        case let list as [Any]: items = list
        case let text as String: items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        default: items = [raw]
        }
        guard !items.isEmpty else { throw fail("a list of numbers") }
        return try items.map { item in
            do {
                return try Value(item, name: name, source: source).number()
            } catch {
                throw fail("a list of numbers")
            }
        }
    }
}
