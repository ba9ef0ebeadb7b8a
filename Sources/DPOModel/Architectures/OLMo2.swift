import Foundation

extension Architecture {
    /// OLMo 2: no norm before attention or the MLP; each sublayer's output is normalized before the
    /// residual add (`post_attention_layernorm`, `post_feedforward_layernorm`), and q and k get an
    /// RMSNorm over the whole projection (`q_norm` `[heads·head_dim]`, `k_norm`
    /// `[kv_heads·head_dim]`) before RoPE. `attention_bias` puts a bias on q, k, v and o; untied
    /// unless config.json says so.
    public static let olmo2 = Architecture(
        className: "Olmo2ForCausalLM", modelType: "olmo2", tiesWordEmbeddingsByDefault: false,
        tensorNames: TensorNames(inputNorm: "post_attention_layernorm", postNorm: "post_feedforward_layernorm"),
        readSpec: { json, layers in
            let attentionBias = try json.bool("attention_bias", default: false)
            var spec = DecoderSpec(qkvBias: attentionBias, oBias: attentionBias, layerUsesRope: Array(repeating: true, count: layers))
            spec.normPlacement = .afterSublayer
            spec.qkNorm = .wholeProjection
            return spec
        },
        writeSpec: { spec, json in json["attention_bias"] = spec.qkvBias })
}
