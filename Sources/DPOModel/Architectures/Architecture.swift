import Foundation

/// One `architectures[0]` of config.json that dpo-dist runs: what its keys mean for the decoder and
/// what its tensors are called. Each lives in a file of its own (Llama.swift, Qwen2.swift, ...) as a
/// static member, listed once in `registry`: adding an architecture is that file and that line.
public struct Architecture: Sendable, Equatable {
    /// The class name config.json gives in `architectures`, e.g. "LlamaForCausalLM".
    public let className: String
    /// `model_type`, written into the config.json of a model dpo-dist makes.
    public let modelType: String
    /// `tie_word_embeddings` when config.json does not say.
    public let tiesWordEmbeddingsByDefault: Bool
    public let tensorNames: TensorNames
    /// Reads the keys that differ between architectures (biases, which layers rotate), for a model
    /// of `layers` layers.
    let readSpec: @Sendable (ConfigJSON, _ layers: Int) throws -> DecoderSpec
    /// Writes back what `readSpec` reads, for the config.json of a model dpo-dist makes.
    let writeSpec: @Sendable (DecoderSpec, inout [String: Any]) -> Void
    /// `head_dim` when config.json does not say: nil for hidden_size / num_attention_heads (Qwen3's
    /// config class defaults to 128 instead).
    var defaultHeadDim: Int? = nil
    /// RoPE theta when config.json does not say (Gemma 3's config class defaults to 1e6).
    var defaultRopeTheta: Double = 10000
    /// `pad_token_id` when config.json does not say (Gemma 3's config class defaults to 0).
    var defaultPadTokenID: Int? = nil

    public static func == (a: Architecture, b: Architecture) -> Bool { a.className == b.className }

    /// Every architecture dpo-dist runs, in the order error messages list them.
    public static let registry: [Architecture] = [.llama, .mistral, .qwen2, .qwen3, .smollm3, .olmo2, .phi3, .gemma3]

    public static func named(_ className: String) -> Architecture? {
        registry.first { $0.className == className }
    }
}

/// What the decoder does differently from one architecture to the next. Everything else (sizes,
/// RoPE frequencies, norm epsilon) is read the same way for all of them by `ModelConfig`.
public struct DecoderSpec: Equatable, Sendable {
    /// A bias on the q, k and v projections.
    public var qkvBias: Bool
    /// A bias on o_proj.
    public var oBias: Bool
    /// A bias on gate_proj, up_proj and down_proj.
    public var mlpBias: Bool
    /// Per layer: whether RoPE rotates q and k (SmolLM3's NoPE layers do not).
    public var layerUsesRope: [Bool]
    /// Per layer: the sliding window of its attention (see `AttentionShape.window`), nil for full
    /// causal attention.
    public var layerWindows: [Int?]
    /// Where each layer's two norms sit (Llama: before attention and the MLP; OLMo 2: after them).
    public var normPlacement: NormPlacement = .beforeSublayer
    /// An RMSNorm on q and on k after their projections, before RoPE (Qwen3, OLMo 2).
    public var qkNorm: QKNorm = .none
    /// The share of each head's dimensions RoPE rotates, the first ones (Phi-3's
    /// `partial_rotary_factor`); the rest pass through.
    public var partialRotaryFactor: Double = 1
    /// q, k and v in one tensor (`qkv_proj`, rows q then k then v) and gate and up in one
    /// (`gate_up_proj`, rows gate then up), as Phi-3 stores them; the decoder reads each part as a
    /// view into it.
    public var fusedProjections = false
    /// Every RMSNorm (the layers', q/k's and the final one) scales by (offset + weight): 1 for Gemma 3,
    /// whose norm weights are stored centred on 0, else 0.
    public var normWeightOffset: Float = 0
    /// The MLP's activation on gate_proj's output.
    public var mlpActivation: MLPActivation = .silu
    /// q·k is multiplied by attentionScalar^-0.5 before the softmax (Gemma 3's
    /// query_pre_attn_scalar); nil: head_dim^-0.5.
    public var attentionScalar: Double? = nil
    /// The embeddings are multiplied by √hidden_size (Gemma 3), in fp32.
    public var scalesEmbedding = false
    /// The RoPE theta of the sliding-window layers when it is their own (Gemma 3's local base
    /// frequency, without scaling); nil: every layer uses the model's theta and scaling.
    public var slidingRopeTheta: Double? = nil

    public init(qkvBias: Bool = false, oBias: Bool = false, mlpBias: Bool = false, layerUsesRope: [Bool],
                layerWindows: [Int?]? = nil) {
        self.qkvBias = qkvBias
        self.oBias = oBias
        self.mlpBias = mlpBias
        self.layerUsesRope = layerUsesRope
        self.layerWindows = layerWindows ?? Array(repeating: nil, count: layerUsesRope.count)
    }

    /// No biases, RoPE in every layer: Llama's decoder.
    public static func plain(layers: Int) -> DecoderSpec {
        DecoderSpec(layerUsesRope: Array(repeating: true, count: layers))
    }
}

/// Where a decoder layer's norms sit.
public enum NormPlacement: Sendable, Equatable {
    /// Llama: `x + f(norm(x))` for attention and for the MLP.
    case beforeSublayer
    /// OLMo 2: `x + norm(f(x))`: each sublayer's output is normalized before the residual add.
    case afterSublayer
    /// Gemma 3: `x + outNorm(f(inNorm(x)))`: four norms per layer.
    case aroundSublayer
}

/// The activation of the gated MLP: `down(act(gate(h)) ⊙ up(h))`.
public enum MLPActivation: Sendable, Equatable {
    /// SwiGLU (`hidden_act` silu).
    case silu
    /// GeGLU with the tanh form of GELU (`gelu_pytorch_tanh`).
    case geluTanh
}

/// RMSNorm on the projected q and k, before RoPE.
public enum QKNorm: Sendable, Equatable {
    case none
    /// Qwen3: over each head's head_dim values, one weight `[head_dim]` shared by the heads.
    case perHead
    /// OLMo 2: over the whole projection, weights `[heads·head_dim]` and `[kv_heads·head_dim]`.
    case wholeProjection
}

/// The Hugging Face tensor names of an architecture. A layer's tensor is
/// `layerPrefix + "<layer>." + name + ".weight"` (or `.bias`).
public struct TensorNames: Sendable, Equatable {
    public var embed = "model.embed_tokens.weight"
    public var layerPrefix = "model.layers."
    /// The attention sublayer's norm: on its input, or with `NormPlacement.afterSublayer` on its output.
    public var inputNorm = "input_layernorm"
    /// With `DecoderSpec.fusedProjections`, `q` names the fused q/k/v tensor and `gate` the fused
    /// gate/up tensor; `k`, `v` and `up` are then unused.
    public var q = "self_attn.q_proj"
    public var k = "self_attn.k_proj"
    public var v = "self_attn.v_proj"
    public var o = "self_attn.o_proj"
    /// The q and k norms, where the spec has them.
    public var qNorm = "self_attn.q_norm"
    public var kNorm = "self_attn.k_norm"
    /// The MLP sublayer's norm: on its input, or with `NormPlacement.afterSublayer` on its output.
    public var postNorm = "post_attention_layernorm"
    /// With `NormPlacement.aroundSublayer`, the norms on the attention's and the MLP's outputs.
    public var attentionOutputNorm = "post_attention_layernorm"
    public var mlpOutputNorm = "post_feedforward_layernorm"
    public var gate = "mlp.gate_proj"
    public var up = "mlp.up_proj"
    public var down = "mlp.down_proj"
    public var finalNorm = "model.norm.weight"
    public var head = "lm_head.weight"

    /// The names Llama uses, and the architectures derived from it.
    public static let llama = TensorNames()
}
