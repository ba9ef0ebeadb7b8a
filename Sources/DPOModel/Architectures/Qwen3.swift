import Foundation

extension Architecture {
    /// Qwen3: Llama's decoder with an RMSNorm over each head of q and of k (`q_norm`, `k_norm`, weight
    /// `[head_dim]`) before RoPE; `head_dim` is its own key (not hidden_size / heads);
    /// `attention_bias` puts a bias on q, k, v and o (none in the released models), never on the MLP.
    /// As transformers' Qwen3Config: head_dim 128 and untied unless config.json says otherwise (the
    /// released configs say both). Sliding-window layers are refused.
    public static let qwen3 = Architecture(
        className: "Qwen3ForCausalLM", modelType: "qwen3", tiesWordEmbeddingsByDefault: false, tensorNames: .llama,
        readSpec: { json, layers in
            try refuseSlidingLayers(json)
            let attentionBias = try json.bool("attention_bias", default: false)
            var spec = DecoderSpec(qkvBias: attentionBias, oBias: attentionBias, layerUsesRope: Array(repeating: true, count: layers))
            spec.qkNorm = .perHead
            return spec
        },
        writeSpec: { spec, json in json["attention_bias"] = spec.qkvBias },
        defaultHeadDim: 128)

    /// `layer_types` (transformers 5) may list only full-attention layers: sliding-window attention
    /// is not supported.
    static func refuseSlidingLayers(_ json: ConfigJSON) throws {
        guard let types = json.values["layer_types"] as? [Any] else { return }
        for case let type as String in types where type != "full_attention" {
            throw json.fail("\"layer_types\" has \"\(type)\" layers; only full_attention is supported (no sliding-window attention)")
        }
    }
}
