import Foundation

extension Architecture {
    /// Qwen2 and Qwen2.5: a bias on q, k and v, never on o_proj or the MLP; untied unless config.json
    /// says so.
    public static let qwen2 = Architecture(
        className: "Qwen2ForCausalLM", modelType: "qwen2", tiesWordEmbeddingsByDefault: false, tensorNames: .llama,
        readSpec: { _, layers in
            DecoderSpec(qkvBias: true, oBias: false, mlpBias: false, layerUsesRope: Array(repeating: true, count: layers))
        },
        writeSpec: { _, _ in })
}
