import Foundation

extension Architecture {
    /// Mistral: Llama's decoder without biases, every layer attending through `sliding_window`
    /// (4096 when config.json does not say, none when it is null); untied unless config.json says so.
    /// transformers' Mistral ignores `layer_types`, and so does dpo-dist.
    public static let mistral = Architecture(
        className: "MistralForCausalLM", modelType: "mistral", tiesWordEmbeddingsByDefault: false, tensorNames: .llama,
        readSpec: { json, layers in
            let window = try slidingWindow(json, absent: 4096)
            return DecoderSpec(layerUsesRope: Array(repeating: true, count: layers),
                               layerWindows: Array(repeating: window, count: layers))
        },
        writeSpec: { spec, json in writeSlidingWindow(spec, &json) })
}
