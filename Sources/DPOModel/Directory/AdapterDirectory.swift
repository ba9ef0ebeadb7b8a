import DPOKernels
import DPOSupport
import Foundation
import Safetensors

/// A PEFT LoRA adapter directory, as `PeftModel.save_pretrained` writes it and
/// `PeftModel.from_pretrained` reads it: `adapter_config.json` (naming the base model in
/// `base_model_name_or_path`) and `adapter_model.safetensors` with PEFT's tensor names
/// (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`, ...).
public enum AdapterDirectory {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// Whether `directory` holds an adapter (its adapter_config.json) rather than a whole model.
    public static func isAdapter(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(configFile))
    }

    /// adapter_config.json, read and checked.
    public struct Config {
        public let settings: LoRASettings
        public let dropout: Double
        /// base_model_name_or_path as written, and the local directory it names.
        public let baseModel: String
        public let baseDirectory: String
    }

    /// Reads adapter_config.json. A LoRA variant dpo-dist does not compute (DoRA, biases, other
    /// modules trained, per-layer ranks, a regular expression for target_modules, ...) is refused by key.
    public static func readConfig(_ directory: String) throws -> Config {
        let path = (directory as NSString).appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DPOError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw DPOError.file(path, "is not valid JSON: \(error.localizedDescription)")
        }
        guard let json = object as? [String: Any] else { throw DPOError.file(path, "is not a JSON object") }
        func fail(_ what: String) -> DPOError { DPOError.file(path, what) }
        let type = json["peft_type"] as? String ?? "absent"
        guard type == "LORA" else { throw fail("peft_type is \(type); dpo-dist reads LoRA adapters (peft_type LORA) only") }
        guard let rank = json["r"] as? Int, rank >= 1 else { throw fail("r must be a whole number of at least 1, got \(json["r"] ?? "none")") }
        guard let alpha = (json["lora_alpha"] as? NSNumber)?.doubleValue, alpha > 0, alpha.isFinite else {
            throw fail("lora_alpha must be a number above 0, got \(json["lora_alpha"] ?? "none")")
        }
        let targets: [String]
        switch json["target_modules"] {
        case let names as [String] where !names.isEmpty: targets = names
        case let name as String where name == "all-linear": targets = [name]
        case let other:
            throw fail("target_modules must be a list of module names or \"all-linear\", got \(other.map { "\($0)" } ?? "none") (a regular expression is not supported)")
        }
        // Keys whose non-default values change what the adapter computes.
        let mustBeOff: [(String, String)] = [
            ("use_dora", "DoRA"), ("fan_in_fan_out", "fan_in_fan_out (Conv1D weights)"), ("lora_bias", "LoRA biases"),
            ("modules_to_save", "modules_to_save (whole modules trained beside the adapter)"),
            ("layers_to_transform", "layers_to_transform"), ("layers_pattern", "layers_pattern"),
            ("rank_pattern", "per-module ranks (rank_pattern)"), ("alpha_pattern", "per-module alphas (alpha_pattern)"),
            ("exclude_modules", "exclude_modules"), ("target_parameters", "target_parameters"),
            ("layer_replication", "layer_replication"), ("trainable_token_indices", "trainable_token_indices"),
            ("megatron_config", "megatron_config"), ("alora_invocation_tokens", "activated LoRA (alora_invocation_tokens)"),
            ("arrow_config", "Arrow routing (arrow_config)"), ("use_qalora", "QALoRA"), ("use_bdlora", "block-diagonal LoRA (use_bdlora)"),
            ("monteclora_config", "MonteCLoRA"), ("kasa_config", "KaSA (kasa_config)"),
        ]
        for (key, what) in mustBeOff {
            switch json[key] {
            case nil, is NSNull: continue
            case let b as Bool where !b: continue
            case let d as [String: Any] where d.isEmpty: continue
            case let l as [Any] where l.isEmpty: continue
            default: throw fail("\(key) is set: \(what) is not supported by dpo-dist's LoRA")
            }
        }
        if let bias = json["bias"] as? String, bias != "none" { throw fail("bias is \"\(bias)\": dpo-dist's LoRA trains no biases (bias \"none\")") }
        let rslora = json["use_rslora"] as? Bool ?? false
        let dropout = (json["lora_dropout"] as? NSNumber)?.doubleValue ?? 0
        guard let base = json["base_model_name_or_path"] as? String, !base.isEmpty else {
            throw fail("base_model_name_or_path is missing: it must name the base model's directory")
        }
        return Config(settings: LoRASettings(rank: rank, alpha: alpha, targets: targets, rslora: rslora), dropout: dropout,
                      baseModel: base, baseDirectory: try resolveBase(base, adapter: directory, configPath: path))
    }

    /// base_model_name_or_path as a local directory: as given (absolute, or relative to the current
    /// directory, as PEFT reads it), else relative to the adapter directory's parent (an adapter
    /// saved beside its base). A Hub id or a missing directory is refused.
    static func resolveBase(_ base: String, adapter: String, configPath: String) throws -> String {
        let parent = ((adapter as NSString).standardizingPath as NSString).deletingLastPathComponent
        let candidates = base.hasPrefix("/") ? [base] : [base, ((parent as NSString).appendingPathComponent(base) as NSString).standardizingPath]
        for candidate in candidates {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), isDir.boolValue { return candidate }
        }
        throw DPOError.file(configPath, "base_model_name_or_path \"\(base)\" is not a local model directory (looked at \(candidates.joined(separator: " and ")))" +
                            (ModelDirectory.hubDownloadHint(base).map { $0 + ", then set base_model_name_or_path to that path" } ?? ""))
    }

    /// Reads adapter_model.safetensors into `adapters`, strictly: every adapter tensor present with
    /// its shape, every tensor of the file used. BF16/F16 tensors are widened to fp32.
    public static func readWeights(_ directory: String, into adapters: LoRAAdapters) throws {
        let path = (directory as NSString).appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: path) else {
            throw DPOError.file(path, "no such file: an adapter directory needs adapter_config.json and adapter_model.safetensors")
        }
        let file = try SafetensorsFile(path: path)
        for t in adapters.parameters.tensors {
            guard let info = file.tensors[t.name] else {
                throw DPOError.file(path, "missing tensor \"\(t.name)\" (expected by adapter_config.json's r and target_modules)")
            }
            guard info.shape == t.shape else {
                throw DPOError.file(path, "tensor \"\(t.name)\" has shape \(info.shape) but adapter_config.json and the base imply \(t.shape)")
            }
            try file.readFloats(t.name, into: UnsafeMutableBufferPointer(start: adapters.parameters.values.pointer + t.offset, count: t.count))
        }
        let unused = Set(file.tensorNames).subtracting(adapters.parameters.tensors.map(\.name))
        if !unused.isEmpty {
            throw DPOError.file(path, "\(unused.count) tensor(s) not used by a LoRA adapter of this config: \(unused.sorted().prefix(5).joined(separator: ", "))")
        }
    }

    /// A whole adapter directory: its base model (loaded strictly, computing with `matmul`) with
    /// the adapter attached.
    /// `frozen` as in `ModelDirectory.load`: the base is never updated (the adapter is not merged into it).
    public static func load(_ directory: String, matmul: any MatmulBackend = OpenBLASFP32(), frozen: Bool = false) throws
        -> (base: ModelDirectory.Loaded, config: Config) {
        let config = try readConfig(directory)
        let base = try ModelDirectory.load(config.baseDirectory, matmul: matmul, frozen: frozen)
        let adapters = try LoRAAdapters(layout: base.model.layout, config: base.model.config, settings: config.settings)
        try readWeights(directory, into: adapters)
        base.model.attach(adapters)
        return (base, config)
    }

    /// A model directory, or an adapter directory as its base with the adapter attached (for
    /// scoring, eval and generation: a lora_dropout in its config changes nothing there), and
    /// where its tokenizer files are (an adapter directory's own when it has tokenizer.json).
    public static func loadModelOrAdapter(_ directory: String, matmul: any MatmulBackend = OpenBLASFP32(), frozen: Bool = false) throws
        -> (model: Transformer, tokenizerDirectory: String) {
        guard isAdapter(directory) else { return (try ModelDirectory.load(directory, matmul: matmul, frozen: frozen).model, directory) }
        let (base, config) = try load(directory, matmul: matmul, frozen: frozen)
        return (base.model, tokenizerDirectory(directory, base: config.baseDirectory))
    }

    /// Where an adapter's tokenizer files are: its own directory when it has tokenizer.json (a
    /// trainer's output), else its base's (PEFT's save_pretrained writes none).
    public static func tokenizerDirectory(_ directory: String, base: String) -> String {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("tokenizer.json")) ? directory : base
    }

    /// The directories of a model's config.json and of its tokenizer files: a model directory's
    /// own, or an adapter directory's base and tokenizer (without loading any weights).
    public static func configAndTokenizerDirectories(_ directory: String) throws -> (config: String, tokenizer: String) {
        guard isAdapter(directory) else { return (directory, directory) }
        let base = try readConfig(directory).baseDirectory
        return (base, tokenizerDirectory(directory, base: base))
    }

    /// Writes `adapters` as PEFT saves them: adapter_config.json (base_model_name_or_path
    /// `baseModel`) and adapter_model.safetensors in `dtype`, plus the tokenizer files from
    /// `companionsFrom`. Files are written beside their final names and renamed into place.
    public static func save(_ adapters: LoRAAdapters, to directory: String, baseModel: String,
                            companionsFrom source: String?, dtype: SafetensorsDType = .f32) throws {
        guard dtype == .f32 || dtype == .bf16 else {
            throw DPOError("save dtype must be float32 or bfloat16, got \(dtype.rawValue)")
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw DPOError.file(directory, "cannot create the directory: \(error.localizedDescription)")
        }
        let values = adapters.parameters.values
        let entries = adapters.parameters.tensors.map { t in
            SafetensorsWriter.Entry(name: t.name, shape: t.shape, data: UnsafeBufferPointer(start: values.pointer + t.offset, count: t.count))
        }
        try withExtendedLifetime(values) {
            try SafetensorsWriter.write(path: (directory as NSString).appendingPathComponent(weightsFile), entries: entries,
                                        dtype: dtype, metadata: ["format": "pt"])
        }
        let s = adapters.settings
        let alpha: Any = s.alpha == s.alpha.rounded() && abs(s.alpha) < 1e15 ? Int(s.alpha) as Any : s.alpha as Any
        let json: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": baseModel,
            "r": s.rank, "lora_alpha": alpha, "lora_dropout": 0.0, "use_rslora": s.rslora,
            "target_modules": adapters.targetModules, "bias": "none", "use_dora": false, "fan_in_fan_out": false,
            "init_lora_weights": true, "inference_mode": true, "modules_to_save": NSNull(),
            "layers_to_transform": NSNull(), "layers_pattern": NSNull(), "rank_pattern": [String: Any](),
            "alpha_pattern": [String: Any](), "revision": NSNull(),
        ]
        try ModelDirectory.writeJSON(json, to: (directory as NSString).appendingPathComponent(configFile))
        try ModelDirectory.copyCompanions(from: source, to: directory)
    }
}
