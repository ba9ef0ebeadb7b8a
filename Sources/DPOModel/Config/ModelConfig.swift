import DPOKernels
import DPOSupport
import Foundation

/// Which `config.json` layout a model directory came with, so a saved model keeps it.
public enum ConfigForm: String, Sendable {
    /// transformers 4: `rope_theta`, `rope_scaling`, `torch_dtype`.
    case v4
    /// transformers 5: `rope_parameters`, `dtype`.
    case v5
}

/// A model's `config.json`, parsed strictly: every field the engine needs is read and checked. The
/// keys every architecture shares are read here; the architecture reads its own into `spec`.
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
    /// What this architecture's decoder does differently: biases, which layers rotate.
    public var spec: DecoderSpec
    public var maxPositionEmbeddings: Int
    /// `pad_token_id`: transformers builds the embedding with `padding_idx` set to it, so that row
    /// never receives a gradient from the input side. We keep the same semantics.
    public var padTokenID: Int?
    /// The dtype the weights were stored in ("float32", "bfloat16", "float16").
    public var storedDType: String
    public var form: ConfigForm

    public var qDim: Int { numHeads * headDim }
    public var kvDim: Int { numKVHeads * headDim }
    /// The leading dimensions of each head that RoPE rotates: int(head_dim · partial_rotary_factor),
    /// as transformers computes it.
    public var rotaryDim: Int { Int(Double(headDim) * spec.partialRotaryFactor) }
}

extension ModelConfig {
    /// A small Llama for tests, demos and benchmarks.
    public static func llama(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int,
                             numHeads: Int, numKVHeads: Int, headDim: Int? = nil, tied: Bool,
                             ropeTheta: Double = 10000, maxPositions: Int = 2048) -> ModelConfig {
        ModelConfig(architecture: .llama, vocabSize: vocabSize, hiddenSize: hiddenSize,
                    intermediateSize: intermediateSize, numLayers: numLayers, numHeads: numHeads,
                    numKVHeads: numKVHeads, headDim: headDim ?? hiddenSize / numHeads, rmsNormEps: 1e-5,
                    ropeTheta: ropeTheta, ropeScaling: .none, tieWordEmbeddings: tied, spec: .plain(layers: numLayers),
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

    public init(json values: [String: Any], path: String) throws {
        let json = ConfigJSON(values, path: path)
        let names = values["architectures"] as? [String] ?? []
        guard let name = names.first else { throw json.fail("missing \"architectures\"") }
        if name == "Gemma3ForConditionalGeneration" || values["model_type"] as? String == "gemma3" {
            throw json.fail("\"\(name)\" (model_type gemma3: Gemma 3 with its vision tower) is not supported; dpo-dist runs Gemma 3's text model, Gemma3ForCausalLM (model_type gemma3_text)")
        }
        guard let arch = Architecture.named(name) else {
            let known = Architecture.registry.map(\.className).joined(separator: ", ")
            throw json.fail("unsupported architecture \"\(name)\" (supported: \(known))")
        }
        architecture = arch
        vocabSize = try json.int("vocab_size")
        hiddenSize = try json.int("hidden_size")
        intermediateSize = try json.int("intermediate_size")
        numLayers = try json.int("num_hidden_layers")
        numHeads = try json.int("num_attention_heads")
        numKVHeads = try json.int("num_key_value_heads", default: numHeads)
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize),
                             ("intermediate_size", intermediateSize), ("num_hidden_layers", numLayers),
                             ("num_attention_heads", numHeads), ("num_key_value_heads", numKVHeads)] where value < 1 {
            throw json.fail("\"\(key)\" must be at least 1, got \(value)")
        }
        if json.has("head_dim") {
            headDim = try json.int("head_dim")
            if headDim < 1 { throw json.fail("\"head_dim\" must be at least 1, got \(headDim)") }
        } else if let d = arch.defaultHeadDim {
            headDim = d
        } else {
            guard hiddenSize % numHeads == 0 else {
                throw json.fail("num_attention_heads \(numHeads) does not divide hidden_size \(hiddenSize) (and no head_dim is given)")
            }
            headDim = hiddenSize / numHeads
        }
        guard headDim % 2 == 0 else { throw json.fail("head_dim \(headDim) must be even for RoPE") }
        guard numHeads % numKVHeads == 0 else {
            throw json.fail("num_key_value_heads \(numKVHeads) does not divide num_attention_heads \(numHeads)")
        }
        rmsNormEps = Float(try json.double("rms_norm_eps", default: 1e-6))
        maxPositionEmbeddings = try json.int("max_position_embeddings", default: 2048)
        if let pad = values["pad_token_id"] as? NSNumber, !isJSONBoolean(pad) {
            padTokenID = pad.intValue >= 0 && pad.intValue < vocabSize ? pad.intValue : nil
        } else if values["pad_token_id"] == nil {
            padTokenID = arch.defaultPadTokenID
        } else {
            padTokenID = nil
        }

        // The architecture's own keys before the shared RoPE keys, so that an architecture refuses a rope
        // type in its own words (Phi-3's longrope).
        spec = try arch.readSpec(json, numLayers)
        // Architectures with an activation key of their own (Gemma 3's hidden_activation) read it in readSpec.
        if spec.mlpActivation == .silu, let act = values["hidden_act"] as? String, act != "silu" {
            throw json.fail("unsupported hidden_act \"\(act)\" (only silu)")
        }
        let rotated = Int(Double(headDim) * spec.partialRotaryFactor)  // `rotaryDim`, before self is whole
        guard rotated >= 2, rotated % 2 == 0 else {
            throw json.fail("head_dim \(headDim) × partial_rotary_factor \(spec.partialRotaryFactor) = \(rotated) rotated dimensions; RoPE needs an even number, at least 2")
        }

        // transformers 5 keeps theta and scaling together in rope_parameters; 4 has them apart. With one
        // entry per layer type (Gemma 3) these are the full-attention layers'; the architecture reads the
        // sliding layers' own.
        let rope: [String: Any]?
        if var params = values["rope_parameters"] as? [String: Any] {
            form = .v5
            if let full = params["full_attention"] as? [String: Any] { params = full }
            rope = params
            ropeTheta = try json.double("rope_theta", in: params, default: try json.double("rope_theta", default: arch.defaultRopeTheta))
        } else {
            form = .v4
            rope = values["rope_scaling"] as? [String: Any]
            ropeTheta = try json.double("rope_theta", default: arch.defaultRopeTheta)
        }
        let ropeType = (rope?["rope_type"] as? String) ?? (rope?["type"] as? String) ?? "default"
        switch (ropeType, rope) {
        case ("default", _):
            ropeScaling = .none
        case ("llama3", let r?):
            ropeScaling = .llama3(factor: try json.double("factor", in: r), lowFreqFactor: try json.double("low_freq_factor", in: r),
                                  highFreqFactor: try json.double("high_freq_factor", in: r),
                                  originalMaxPositions: Int(try json.double("original_max_position_embeddings", in: r)))
        case ("linear", let r?):
            ropeScaling = .linear(factor: try json.double("factor", in: r))
        default:
            throw json.fail("unsupported rope type \"\(ropeType)\" (supported: default, linear, llama3)")
        }

        // transformers 5 writes `dtype`, 4 writes `torch_dtype`.
        storedDType = (values["dtype"] as? String) ?? (values["torch_dtype"] as? String) ?? "float32"
        tieWordEmbeddings = try json.bool("tie_word_embeddings", default: arch.tiesWordEmbeddingsByDefault)
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
            "architectures": [architecture.className],
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
        architecture.writeSpec(spec, &json)
        return json
    }
}
