import Foundation

extension Architecture {
    /// Phi-3 (and Phi-4-mini): Llama's decoder with q, k and v in one tensor (`qkv_proj`) and gate
    /// and up in one (`gate_up_proj`), and RoPE on the first `partial_rotary_factor` of each head's
    /// dimensions (in `rope_parameters` or at the top level). Only plain RoPE: `longrope` (alias
    /// `su`) is refused by name. `sliding_window` (none when absent or null) in every layer, as
    /// Phi-3-mini-4k's 2047. No biases; untied unless config.json says so.
    public static let phi3 = Architecture(
        className: "Phi3ForCausalLM", modelType: "phi3", tiesWordEmbeddingsByDefault: false,
        tensorNames: TensorNames(q: "self_attn.qkv_proj", gate: "mlp.gate_up_proj"),
        readSpec: { json, layers in
            let rope = json.values["rope_parameters"] as? [String: Any] ?? json.values["rope_scaling"] as? [String: Any]
            let ropeType = (rope?["rope_type"] as? String) ?? (rope?["type"] as? String) ?? "default"
            if ropeType == "longrope" || ropeType == "su" {
                throw json.fail("rope type \"\(ropeType)\" (Phi-3's long-context RoPE) is not supported; only the default RoPE")
            }
            guard ropeType == "default" else {
                throw json.fail("rope type \"\(ropeType)\" is not one Phi3ForCausalLM takes (default or longrope; dpo-dist runs default)")
            }
            var spec = DecoderSpec(layerUsesRope: Array(repeating: true, count: layers),
                                   layerWindows: Array(repeating: try slidingWindow(json, absent: nil), count: layers))
            spec.fusedProjections = true
            spec.partialRotaryFactor = try json.double("partial_rotary_factor", in: rope, default: try json.double("partial_rotary_factor", default: 1))
            guard spec.partialRotaryFactor > 0, spec.partialRotaryFactor <= 1 else {
                throw json.fail("\"partial_rotary_factor\" must be in (0, 1], got \(spec.partialRotaryFactor)")
            }
            return spec
        },
        writeSpec: { spec, json in
            json["partial_rotary_factor"] = spec.partialRotaryFactor
            writeSlidingWindow(spec, &json)
        })
}
