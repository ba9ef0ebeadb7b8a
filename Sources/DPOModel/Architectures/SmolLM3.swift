import Foundation

extension Architecture {
    /// SmolLM3: Llama's decoder with NoPE layers, which skip RoPE: `no_rope_layers` (1 = RoPE) per
    /// layer, or every `no_rope_layer_interval`-th layer (default 4) without; tied by default.
    public static let smollm3 = Architecture(
        className: "SmolLM3ForCausalLM", modelType: "smollm3", tiesWordEmbeddingsByDefault: true, tensorNames: .llama,
        readSpec: { json, layers in
            var spec = try llamaBiases(json, layers: layers)
            if let flags = json.values["no_rope_layers"] as? [Any] {
                guard flags.count == layers else {
                    throw json.fail("\"no_rope_layers\" has \(flags.count) entries for \(layers) layers")
                }
                spec.layerUsesRope = try flags.map { flag in
                    guard let n = flag as? NSNumber else { throw json.fail("\"no_rope_layers\" must hold 0 or 1") }
                    return n.intValue != 0
                }
            } else {
                let interval = try json.int("no_rope_layer_interval", default: 4)
                guard interval >= 1 else { throw json.fail("\"no_rope_layer_interval\" must be at least 1, got \(interval)") }
                spec.layerUsesRope = (0..<layers).map { ($0 + 1) % interval != 0 }
            }
            // transformers makes the NoPE layers slide when use_sliding_window is set, unless
            // layer_types says otherwise; a layer_types entry slides whatever use_sliding_window says.
            let slides = try json.bool("use_sliding_window", default: false)
            let rope = spec.layerUsesRope
            spec.layerWindows = try layerWindows(json, layers: layers, window: try slidingWindow(json, absent: nil)) {
                slides && !rope[$0]
            }
            return spec
        },
        writeSpec: { spec, json in
            writeLlamaBiases(spec, &json)
            json["no_rope_layers"] = spec.layerUsesRope.map { $0 ? 1 : 0 }
            writeLayerWindows(spec, &json)
            json["use_sliding_window"] = spec.layerWindows.contains { $0 != nil }
        })
}
