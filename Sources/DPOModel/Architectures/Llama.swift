import Foundation

extension Architecture {
    /// Llama 2 and 3 (and TinyLlama, SmolLM2): `attention_bias` puts a bias on q, k, v and o,
    /// `mlp_bias` on the MLP; RoPE in every layer; untied unless config.json says so.
    public static let llama = Architecture(
        className: "LlamaForCausalLM", modelType: "llama", tiesWordEmbeddingsByDefault: false, tensorNames: .llama,
        readSpec: { json, layers in
            var spec = try llamaBiases(json, layers: layers)
            spec.layerUsesRope = Array(repeating: true, count: layers)
            return spec
        },
        writeSpec: { spec, json in writeLlamaBiases(spec, &json) })

    /// Llama's `attention_bias` and `mlp_bias`, which SmolLM3 shares.
    static func llamaBiases(_ json: ConfigJSON, layers: Int) throws -> DecoderSpec {
        let attentionBias = try json.bool("attention_bias", default: false)
        return DecoderSpec(qkvBias: attentionBias, oBias: attentionBias, mlpBias: try json.bool("mlp_bias", default: false),
                           layerUsesRope: Array(repeating: true, count: layers))
    }

    static func writeLlamaBiases(_ spec: DecoderSpec, _ json: inout [String: Any]) {
        json["attention_bias"] = spec.qkvBias
        json["mlp_bias"] = spec.mlpBias
    }
}
