import DPOKernels
import DPOSupport
import Foundation
import Safetensors

/// A Hugging Face model directory: `config.json`, `model.safetensors` (or sharded with
/// `model.safetensors.index.json`), tokenizer files and optionally `generation_config.json`.
public enum ModelDirectory {
    /// Files copied unchanged from the source directory when a model is saved.
    public static let companionFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "generation_config.json", "chat_template.jinja"]

    public struct Loaded {
        public let model: Transformer
        /// config.json as read, kept so a saved model carries every original key.
        public let configJSON: [String: Any]
        public let directory: String
    }

    /// Loads config and weights strictly: every parameter must be filled by a tensor of the right shape,
    /// and every tensor in the files must be used. Weights in BF16/F16 are widened to fp32. The model
    /// computes its products with `matmul`.
    ///
    /// `frozen`: the model will never be updated (a LoRA base, a reference, a model only scored), so
    /// its decoder linears stored in BF16 stay as they are, in the files' mappings (`FrozenWeights`):
    /// the numbers are the same, the memory half (and shared by the ranks of a node).
    public static func load(_ directory: String, matmul: any MatmulBackend = OpenBLASFP32(), frozen: Bool = false) throws -> Loaded {
        let (config, json) = try loadConfig(directory)
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        let layout = ParameterLayout(config: config)
        for t in layout.tensors {
            guard let info = checkpoint.info(t.name) else {
                throw DPOError.file(directory, "missing tensor \"\(t.name)\" (expected by \(config.architecture.className) with this config.json)")
            }
            guard info.shape == t.shape else {
                throw DPOError.file(directory, "tensor \"\(t.name)\" has shape \(info.shape) but config.json implies \(t.shape)")
            }
        }
        let frozenWeights = frozen ? FrozenWeights(layout: layout, checkpoint: checkpoint) : nil
        let kept = frozenWeights?.tensorNames ?? []
        let model = Transformer(config: config, values: kept.isEmpty ? nil : FloatBuffer(pagesOnFirstWrite: layout.count),
                                matmul: matmul, frozenWeights: frozenWeights)
        for t in layout.tensors where !kept.contains(t.name) {
            try checkpoint.readFloats(t.name, into: UnsafeMutableBufferPointer(start: model.parameters.values.pointer + t.offset, count: t.count))
        }
        // A tied model may still carry lm_head.weight (some exporters write it); it must then equal
        // the embedding it is tied to, or the file and config disagree.
        var unused = Set(checkpoint.tensorNames).subtracting(layout.tensors.map(\.name))
        if config.tieWordEmbeddings, unused.contains("lm_head.weight") {
            let head = try checkpoint.floatsOf("lm_head.weight")
            let embed = UnsafeBufferPointer(start: model.parameters.values.pointer + layout.embed, count: head.count)
            guard head.elementsEqual(embed) else {
                throw DPOError.file(directory, "tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight")
            }
            unused.remove("lm_head.weight")
        }
        // Rotary caches some exporters store are derived values, not parameters.
        unused = unused.filter { !$0.hasSuffix("rotary_emb.inv_freq") }
        if !unused.isEmpty {
            let names = unused.sorted().prefix(5).joined(separator: ", ")
            throw DPOError.file(directory, "\(unused.count) tensor(s) not used by \(config.architecture.className): \(names)")
        }
        return Loaded(model: model, configJSON: json, directory: directory)
    }

    /// The bytes a model's weights take once loaded (`frozen` as in `load`: its BF16 decoder linears
    /// at 2 bytes a weight), from its config.json and safetensors headers, without reading weights.
    public static func weightBytes(_ directory: String, frozen: Bool) throws -> (fp32: Int, bf16: Int) {
        let layout = ParameterLayout(config: try loadConfig(directory).config)
        guard frozen else { return layout.weightBytes(frozen: nil) }
        return layout.weightBytes(frozen: FrozenWeights(layout: layout, checkpoint: try SafetensorsCheckpoint(directory: directory)))
    }

    /// A model directory's config.json, without its weights; a path that is no directory is refused
    /// (with the download command when it reads as a Hub id).
    public static func loadConfig(_ directory: String) throws -> (config: ModelConfig, json: [String: Any]) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw DPOError.file(directory, "no such model directory" + (hubDownloadHint(directory) ?? ""))
        }
        return try ModelConfig.load(path: (directory as NSString).appendingPathComponent("config.json"))
    }

    /// For a path that is nothing here but reads as a Hugging Face Hub id (`owner/name`, and no
    /// folder `owner` here): the commands that download it. dpo-dist itself never uses the network.
    public static func hubDownloadHint(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        guard parts.count == 2, parts.allSatisfy({ part in
            !part.isEmpty && !part.hasPrefix(".") && part.unicodeScalars.allSatisfy { $0.isASCII && allowed.contains($0) }
        }), !FileManager.default.fileExists(atPath: parts[0]) else { return nil }
        let local = "models/" + parts[1]
        return "; it looks like a Hugging Face Hub id, and dpo-dist reads local directories only: download it with " +
            "`hf download \(path) --local-dir \(local)` (older huggingface_hub: `huggingface-cli download \(path) --local-dir \(local)`) " +
            "and pass \(local)"
    }

    /// Writes `model` as a directory transformers loads: model.safetensors with Hugging Face names,
    /// config.json (the original keys, dtype updated), and the tokenizer/generation files copied from
    /// `companionsFrom`. Files are written beside their final names and renamed into place.
    public static func save(_ model: Transformer, to directory: String, configJSON: [String: Any]?,
                            companionsFrom source: String?, dtype: SafetensorsDType = .f32) throws {
        // Its frozen weights are not in its fp32 buffer; such a model is never trained, so never saved.
        precondition(model.frozenWeights == nil, "a model loaded with frozen bf16 weights cannot be saved")
        guard dtype == .f32 || dtype == .bf16 else {
            throw DPOError("save dtype must be float32 or bfloat16, got \(dtype.rawValue)")
        }
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw DPOError.file(directory, "cannot create the directory: \(error.localizedDescription)")
        }
        let entries = model.layout.tensors.map { t in
            SafetensorsWriter.Entry(name: t.name, shape: t.shape,
                                    data: UnsafeBufferPointer(start: model.parameters.values.pointer + t.offset, count: t.count))
        }
        let path = (directory as NSString).appendingPathComponent("model.safetensors")
        try SafetensorsWriter.write(path: path, entries: entries, dtype: dtype, metadata: ["format": "pt"])
        // A stale index from an earlier sharded save would shadow nothing (the single file wins) but confuse readers.
        let staleIndex = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        if fm.fileExists(atPath: staleIndex) {
            do { try fm.removeItem(atPath: staleIndex) } catch {
                throw DPOError.file(staleIndex, "cannot remove the index of an earlier sharded save: \(error.localizedDescription)")
            }
        }

        let torchName = dtype == .bf16 ? "bfloat16" : "float32"
        let json = configJSON.map { ModelConfig.savedJSON(original: $0, form: model.config.form, savedDType: torchName) }
            ?? { var c = model.config; c.storedDType = torchName; return c.json() }()
        try writeJSON(json, to: (directory as NSString).appendingPathComponent("config.json"))
        try copyCompanions(from: source, to: directory)
    }

    /// The tokenizer and generation files of `source` (those it has) copied into `directory`.
    static func copyCompanions(from source: String?, to directory: String) throws {
        let fm = FileManager.default
        if let source, source != directory {
            for name in companionFiles {
                let from = (source as NSString).appendingPathComponent(name)
                guard fm.fileExists(atPath: from) else { continue }
                let to = (directory as NSString).appendingPathComponent(name)
                let bytes: Data
                do { bytes = try Data(contentsOf: URL(fileURLWithPath: from)) } catch {
                    throw DPOError.file(from, "cannot read to copy it beside the model: \(error.localizedDescription)")
                }
                try OutputFile.write(bytes, to: to)
            }
        }
    }

    /// Pretty, key-sorted JSON written atomically.
    public static func writeJSON(_ object: Any, to path: String) throws {
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) } catch {
            throw DPOError.file(path, "cannot encode JSON: \(error.localizedDescription)")
        }
        try OutputFile.write(data + Data("\n".utf8), to: path)
    }
}

extension SafetensorsCheckpoint {
    func floatsOf(_ name: String) throws -> [Float] {
        guard let info = info(name) else { throw DPOError.file(directory, "missing tensor \"\(name)\"") }
        var values = [Float](repeating: 0, count: info.elementCount)
        try values.withUnsafeMutableBufferPointer { try readFloats(name, into: $0) }
        return values
    }
}

extension FrozenWeights {
    /// The linears `checkpoint` stores in BF16, in its files' mappings.
    convenience init(layout: ParameterLayout, checkpoint: SafetensorsCheckpoint) {
        self.init(layout: layout) { t in checkpoint.mappedBFloat16(t.name).map { ($0.bits, $0.file) } }
    }
}
