import Foundation

extension Architecture {
    /// Gemma 3's text model (`Gemma3ForCausalLM`, model_type gemma3_text): four RMSNorms per layer
    /// (`input_layernorm` and `post_attention_layernorm` around attention, `pre_feedforward_layernorm`
    /// and `post_feedforward_layernorm` around the MLP), every norm computing x·(1 + weight) in fp32,
    /// including the per-head `q_norm` and `k_norm` before RoPE; GeGLU with `gelu_pytorch_tanh`
    /// (`hidden_activation`); embeddings times √hidden_size; attention scaled by
    /// `query_pre_attn_scalar`^-0.5 (256). `layer_types` (or every `sliding_window_pattern`-th layer
    /// full, 6) picks the layers attending through `sliding_window` (4096); those rotate with their
    /// own theta (`rope_parameters.sliding_attention`, or `rope_local_base_freq`: 1e4), the full ones
    /// with the model's (1e6, with any scaling). As Gemma3TextConfig: head_dim 256, pad_token_id 0
    /// and tied unless config.json says otherwise. Soft-capping and bidirectional attention are
    /// refused by name.
    public static let gemma3 = Architecture(
        className: "Gemma3ForCausalLM", modelType: "gemma3_text", tiesWordEmbeddingsByDefault: true,
        tensorNames: TensorNames(postNorm: "pre_feedforward_layernorm"),
        readSpec: { json, layers in
            let activation = json.values["hidden_activation"] as? String ?? "gelu_pytorch_tanh"
            guard activation == "gelu_pytorch_tanh" else {
                throw json.fail("unsupported hidden_activation \"\(activation)\" (Gemma 3 runs gelu_pytorch_tanh)")
            }
            for key in ["attn_logit_softcapping", "final_logit_softcapping"] where json.has(key) {
                throw json.fail("\"\(key)\" (tanh soft-capping) is not supported; it must be null, as in Gemma 3's released configs")
            }
            if try json.bool("use_bidirectional_attention", default: false) {
                throw json.fail("\"use_bidirectional_attention\" true is not supported (dpo-dist trains causal decoders)")
            }
            let attentionBias = try json.bool("attention_bias", default: false)
            let pattern = try json.int("sliding_window_pattern", default: 6)
            guard pattern >= 1 else { throw json.fail("\"sliding_window_pattern\" must be at least 1, got \(pattern)") }
            var spec = DecoderSpec(qkvBias: attentionBias, oBias: attentionBias, layerUsesRope: Array(repeating: true, count: layers),
                                   layerWindows: try layerWindows(json, layers: layers, window: try slidingWindow(json, absent: 4096)) {
                                       ($0 + 1) % pattern != 0
                                   })
            spec.normPlacement = .aroundSublayer
            spec.qkNorm = .perHead
            spec.normWeightOffset = 1
            spec.mlpActivation = .geluTanh
            spec.scalesEmbedding = true
            let scalar = try json.double("query_pre_attn_scalar", default: 256)
            guard scalar > 0 else { throw json.fail("\"query_pre_attn_scalar\" must be positive, got \(scalar)") }
            spec.attentionScalar = scalar
            if let local = (json.values["rope_parameters"] as? [String: Any])?["sliding_attention"] as? [String: Any] {
                let type = local["rope_type"] as? String ?? "default"
                guard type == "default" else {
                    throw json.fail("rope type \"\(type)\" for the sliding layers (rope_parameters.sliding_attention) is not supported; only default")
                }
                spec.slidingRopeTheta = try json.double("rope_theta", in: local, default: 10000)
            } else {
                spec.slidingRopeTheta = try json.double("rope_local_base_freq", default: 10000)
            }
            return spec
        },
        writeSpec: { spec, json in
            json.removeValue(forKey: "hidden_act")
            json["hidden_activation"] = "gelu_pytorch_tanh"
            json["attention_bias"] = spec.qkvBias
            json["query_pre_attn_scalar"] = spec.attentionScalar ?? 256
            json["rope_local_base_freq"] = spec.slidingRopeTheta ?? 10000
            json["attn_logit_softcapping"] = NSNull()
            json["final_logit_softcapping"] = NSNull()
            writeLayerWindows(spec, &json)
        },
        defaultHeadDim: 256, defaultRopeTheta: 1e6, defaultPadTokenID: 0)
}
