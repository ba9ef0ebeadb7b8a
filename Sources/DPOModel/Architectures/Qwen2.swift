import Foundation

extension Architecture {
    /// Qwen2 and Qwen2.5: a bias on q, k and v, never on o_proj or the MLP; untied unless config.json
    /// says so. With `use_sliding_window` the layers from `max_window_layers` on (or those
    /// `layer_types` names) attend through `sliding_window`.
    public static let qwen2 = Architecture(
        className: "Qwen2ForCausalLM", modelType: "qwen2", tiesWordEmbeddingsByDefault: false, tensorNames: .llama,
        readSpec: { json, layers in
            DecoderSpec(qkvBias: true, oBias: false, mlpBias: false, layerUsesRope: Array(repeating: true, count: layers),
                        layerWindows: try qwenLayerWindows(json, layers: layers))
        },
        writeSpec: { spec, json in writeQwenLayerWindows(spec, &json) })

    /// Qwen2's and Qwen3's windows: with `use_sliding_window`, `sliding_window` (4096 when absent) in
    /// the layers from `max_window_layers` (28) on, or in those `layer_types` names.
    static func qwenLayerWindows(_ json: ConfigJSON, layers: Int) throws -> [Int?] {
        let window = try json.bool("use_sliding_window", default: false) ? try slidingWindow(json, absent: 4096) : nil
        let fullLayers = try json.int("max_window_layers", default: 28)
        return try layerWindows(json, layers: layers, window: window) { $0 >= fullLayers }
    }

    static func writeQwenLayerWindows(_ spec: DecoderSpec, _ json: inout [String: Any]) {
        writeLayerWindows(spec, &json)
        json["use_sliding_window"] = spec.layerWindows.contains { $0 != nil }
    }
}
