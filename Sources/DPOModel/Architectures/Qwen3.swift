import Foundation

extension Architecture {
    /// Qwen3: Llama's decoder with an RMSNorm over each head of q and of k (`q_norm`, `k_norm`, weight
    /// `[head_dim]`) before RoPE; `head_dim` is its own key (not hidden_size / heads);
    /// `attention_bias` puts a bias on q, k, v and o (none in the released models), never on the MLP.
    /// As transformers' Qwen3Config: head_dim 128 and untied unless config.json says otherwise (the
    /// released configs say both). Sliding-window layers as Qwen2's.
    public static let qwen3 = Architecture(
        className: "Qwen3ForCausalLM", modelType: "qwen3", tiesWordEmbeddingsByDefault: false, tensorNames: .llama,
        readSpec: { json, layers in
            let attentionBias = try json.bool("attention_bias", default: false)
            var spec = DecoderSpec(qkvBias: attentionBias, oBias: attentionBias, layerUsesRope: Array(repeating: true, count: layers),
                                   layerWindows: try qwenLayerWindows(json, layers: layers))
            spec.qkNorm = .perHead
            return spec
        },
        writeSpec: { spec, json in
            json["attention_bias"] = spec.qkvBias
            writeQwenLayerWindows(spec, &json)
        },
        defaultHeadDim: 128)
}
