import Foundation

extension Architecture {
    /// Qwen2 and Qwen2.5: a bias on q, k and v, never on o_proj or the MLP; untied unless config.json
    /// says so. With `use_sliding_window` the layers from `max_window_layers` on (or those
    /// `layer_types` names) attend through `sliding_window`.
    public static let qwen2 = Architecture(
        className: "Qwen2ForCausalLM", modelType: "qwen2", tiesWordEmbeddingsByDefault: false, tensorNames: .llama,
        readSpec: { json, layers in
            let window = try json.bool("use_sliding_window", default: false) ? try slidingWindow(json, absent: 4096) : nil
            let fullLayers = try json.int("max_window_layers", default: 28)
            return DecoderSpec(qkvBias: true, oBias: false, mlpBias: false, layerUsesRope: Array(repeating: true, count: layers),
                               layerWindows: try layerWindows(json, layers: layers, window: window) { $0 >= fullLayers })
        },
        writeSpec: { spec, json in
            writeLayerWindows(spec, &json)
            json["use_sliding_window"] = spec.layerWindows.contains { $0 != nil }
        })
}
