import DPOKernels
import DPOSupport
import Foundation

/// The architectures the engine runs. All three are the same decoder (RMSNorm, RoPE, grouped-query
/// attention, SwiGLU); they differ in biases, tying defaults and which layers apply RoPE.
public enum Architecture: String, CaseIterable, Sendable {
    case llama = "LlamaForCausalLM"
    case qwen2 = "Qwen2ForCausalLM"
    case smollm3 = "SmolLM3ForCausalLM"

    var modelType: String {
        switch self {
        case .llama: return "llama"
        case .qwen2: return "qwen2"
        case .smollm3: return "smollm3"
        }
    }
}

/// Which `config.json` layout a model directory came with, so a saved model keeps it.
public enum ConfigForm: String, Sendable {
    /// transformers 4: `rope_theta`, `rope_scaling`, `torch_dtype`.
    case v4
    /// transformers 5: `rope_parameters`, `dtype`.
    case v5
}

/// A model's `config.json`, parsed strictly: every field the engine needs is read and checked.
public struct ModelConfig: Equatable, Sendable {
    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling
    public var tieWordEmbeddings: Bool
    /// Bias on q, k, v projections (Qwen2 always; Llama/SmolLM3 with `attention_bias`).
    public var qkvBias: Bool
    /// Bias on o_proj (Llama/SmolLM3 `attention_bias`; never in Qwen2).
    public var oBias: Bool
    /// Bias on gate/up/down (`mlp_bias`).
    public var mlpBias: Bool
    /// Per layer: whether RoPE is applied (SmolLM3's `no_rope_layers`, 1 = RoPE). All true elsewhere.
    public var layerUsesRope: [Bool]
    public var maxPositionEmbeddings: Int
    /// `pad_token_id`: transformers builds the embedding with `padding_idx` set to it, so that row
    /// never receives a gradient from the input side. We keep the same semantics.
    public var padTokenID: Int?
    /// The dtype the weights were stored in ("float32", "bfloat16", "float16").
    public var storedDType: String
    public var form: ConfigForm

    public var qDim: Int { numHeads * headDim }
    public var kvDim: Int { numKVHeads * headDim }
}

extension ModelConfig {
    /// A small Llama for tests, demos and benchmarks.
    public static func llama(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int,
                             numHeads: Int, numKVHeads: Int, headDim: Int? = nil, tied: Bool,
                             ropeTheta: Double = 10000, maxPositions: Int = 2048) -> ModelConfig {
        ModelConfig(architecture: .llama, vocabSize: vocabSize, hiddenSize: hiddenSize,
                    intermediateSize: intermediateSize, numLayers: numLayers, numHeads: numHeads,
                    numKVHeads: numKVHeads, headDim: headDim ?? hiddenSize / numHeads, rmsNormEps: 1e-5,
                    ropeTheta: ropeTheta, ropeScaling: .none, tieWordEmbeddings: tied, qkvBias: false,
                    oBias: false, mlpBias: false, layerUsesRope: Array(repeating: true, count: numLayers),
                    maxPositionEmbeddings: maxPositions, padTokenID: nil, storedDType: "float32", form: .v4)
    }

    /// Parses `config.json`. Errors name the file and the key.
    public static func load(path: String) throws -> (ModelConfig, [String: Any]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DPOError.file(path, "cannot read the file")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw DPOError.file(path, "not valid JSON")
        }
        guard let json = object as? [String: Any] else { throw DPOError.file(path, "expected a JSON object") }
        return (try ModelConfig(json: json, path: path), json)
    }

    public init(json: [String: Any], path: String) throws {
        func fail(_ what: String) -> DPOError { DPOError.file(path, what) }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let raw = json[key], !(raw is NSNull) else {
                if let value { return value }
                throw fail("missing \"\(key)\"")
            }
            guard let number = raw as? NSNumber, !isJSONBoolean(raw), number.doubleValue == number.doubleValue.rounded() else {
                throw fail("\"\(key)\" must be an integer")
            }
            return number.intValue
        }
        func double(_ dict: [String: Any], _ key: String, default value: Double? = nil) throws -> Double {
            guard let raw = dict[key], !(raw is NSNull) else {
                if let value { return value }
                throw fail("missing \"\(key)\"")
            }
            guard let number = raw as? NSNumber else { throw fail("\"\(key)\" must be a number") }
            return number.doubleValue
        }
        func bool(_ key: String, default value: Bool) throws -> Bool {
            guard let raw = json[key], !(raw is NSNull) else { return value }
            guard isJSONBoolean(raw), let b = raw as? Bool else { throw fail("\"\(key)\" must be true or false") }
            return b
        }

        let names = json["architectures"] as? [String] ?? []
        guard let name = names.first else { throw fail("missing \"architectures\"") }
        guard let arch = Architecture(rawValue: name) else {
            let known = Architecture.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("unsupported architecture \"\(name)\" (supported: \(known))")
        }
        if let act = json["hidden_act"] as? String, act != "silu" {
            throw fail("unsupported hidden_act \"\(act)\" (only silu)")
        }

        architecture = arch
        vocabSize = try int("vocab_size")
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numLayers = try int("num_hidden_layers")
        numHeads = try int("num_attention_heads")
        numKVHeads = try int("num_key_value_heads", default: numHeads)
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize),
                             ("intermediate_size", intermediateSize), ("num_hidden_layers", numLayers),
                             ("num_attention_heads", numHeads), ("num_key_value_heads", numKVHeads)] where value < 1 {
            throw fail("\"\(key)\" must be at least 1, got \(value)")
        }
        if let explicit = json["head_dim"], !(explicit is NSNull) {
            headDim = try int("head_dim")
            if headDim < 1 { throw fail("\"head_dim\" must be at least 1, got \(headDim)") }
        } else {
            guard hiddenSize % numHeads == 0 else {
                throw fail("num_attention_heads \(numHeads) does not divide hidden_size \(hiddenSize) (and no head_dim is given)")
            }
            headDim = hiddenSize / numHeads
        }
        guard headDim % 2 == 0 else { throw fail("head_dim \(headDim) must be even for RoPE") }
        guard numHeads % numKVHeads == 0 else {
            throw fail("num_key_value_heads \(numKVHeads) does not divide num_attention_heads \(numHeads)")
        }
        rmsNormEps = Float(try double(json, "rms_norm_eps", default: 1e-6))
        maxPositionEmbeddings = try int("max_position_embeddings", default: 2048)
        if let pad = json["pad_token_id"] as? NSNumber, !isJSONBoolean(pad) {
            padTokenID = pad.intValue >= 0 && pad.intValue < vocabSize ? pad.intValue : nil
        } else {
            padTokenID = nil
        }

        // transformers 5 keeps theta and scaling together in rope_parameters; 4 has them apart.
        let rope: [String: Any]?
        if let params = json["rope_parameters"] as? [String: Any] {
            form = .v5
            rope = params
            ropeTheta = try double(params, "rope_theta", default: try double(json, "rope_theta", default: 10000))
        } else {
            form = .v4
            rope = json["rope_scaling"] as? [String: Any]
            ropeTheta = try double(json, "rope_theta", default: 10000)
        }
        let ropeType = (rope?["rope_type"] as? String) ?? (rope?["type"] as? String) ?? "default"
        switch ropeType {
        case "default":
            ropeScaling = .none
        case "llama3":
            let r = rope!
            ropeScaling = .llama3(factor: try double(r, "factor"), lowFreqFactor: try double(r, "low_freq_factor"),
                                  highFreqFactor: try double(r, "high_freq_factor"),
                                  originalMaxPositions: Int(try double(r, "original_max_position_embeddings")))
        case "linear":
            ropeScaling = .linear(factor: try double(rope!, "factor"))
        default:
            throw fail("unsupported rope type \"\(ropeType)\" (supported: default, linear, llama3)")
        }

        // transformers 5 writes `dtype`, 4 writes `torch_dtype`.
        storedDType = (json["dtype"] as? String) ?? (json["torch_dtype"] as? String) ?? "float32"

        switch arch {
        case .llama, .smollm3:
            let attentionBias = try bool("attention_bias", default: false)
            qkvBias = attentionBias
            oBias = attentionBias
            mlpBias = try bool("mlp_bias", default: false)
            tieWordEmbeddings = try bool("tie_word_embeddings", default: arch == .smollm3)
        case .qwen2:
            qkvBias = true
            oBias = false
            mlpBias = false
            tieWordEmbeddings = try bool("tie_word_embeddings", default: false)
        }

        if try bool("use_sliding_window", default: false) {
            throw fail("sliding-window attention (use_sliding_window: true) is not supported")
        }
        if arch == .smollm3 {
            if let flags = json["no_rope_layers"] as? [Any], !(json["no_rope_layers"] is NSNull) {
                guard flags.count == numLayers else {
                    throw fail("\"no_rope_layers\" has \(flags.count) entries for \(numLayers) layers")
                }
                layerUsesRope = try flags.map { flag in
                    guard let n = flag as? NSNumber else { throw fail("\"no_rope_layers\" must hold 0 or 1") }
                    return n.intValue != 0
                }
            } else {
                let interval = try int("no_rope_layer_interval", default: 4)
                layerUsesRope = (0..<numLayers).map { ($0 + 1) % interval != 0 }
            }
        } else {
            layerUsesRope = Array(repeating: true, count: numLayers)
        }
    }

    /// The JSON written beside saved weights: the original keys, with the dtype updated to what was saved.
    public static func savedJSON(original: [String: Any], form: ConfigForm, savedDType: String) -> [String: Any] {
        var json = original
        switch form {
        case .v4:
            json["torch_dtype"] = savedDType
            json.removeValue(forKey: "dtype")
        case .v5:
            json["dtype"] = savedDType
            json.removeValue(forKey: "torch_dtype")
        }
        return json
    }

    /// A complete `config.json` for a model made by `dpo-dist` itself (transformers 4 form, which
    /// both transformers 4 and 5 read).
    public func json() -> [String: Any] {
        var json: [String: Any] = [
            "architectures": [architecture.rawValue],
            "model_type": architecture.modelType,
            "vocab_size": vocabSize,
            "hidden_size": hiddenSize,
            "intermediate_size": intermediateSize,
            "num_hidden_layers": numLayers,
            "num_attention_heads": numHeads,
            "num_key_value_heads": numKVHeads,
            "head_dim": headDim,
            "hidden_act": "silu",
            "rms_norm_eps": Double(rmsNormEps),
            "rope_theta": ropeTheta,
            "max_position_embeddings": maxPositionEmbeddings,
            "tie_word_embeddings": tieWordEmbeddings,
            "torch_dtype": storedDType,
            "initializer_range": 0.02,
            "attention_dropout": 0.0,
            "use_cache": true,
        ]
        if let padTokenID { json["pad_token_id"] = padTokenID }
        switch ropeScaling {
        case .none: json["rope_scaling"] = NSNull()
        case let .linear(factor): json["rope_scaling"] = ["rope_type": "linear", "factor": factor]
        case let .llama3(factor, low, high, original):
            json["rope_scaling"] = ["rope_type": "llama3", "factor": factor, "low_freq_factor": low,
                                    "high_freq_factor": high, "original_max_position_embeddings": original]
        }
        if architecture != .qwen2 {
            json["attention_bias"] = qkvBias
            json["mlp_bias"] = mlpBias
        }
        if architecture == .smollm3 { json["no_rope_layers"] = layerUsesRope.map { $0 ? 1 : 0 } }
        return json
    }
}
