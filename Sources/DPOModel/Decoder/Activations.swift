import DPOKernels
import Foundation

/// What one layer's forward keeps for its backward (T tokens, C hidden, Q = heads·head_dim,
/// KV = kv_heads·head_dim, I intermediate, H heads).
/// With the norms after their sublayers (OLMo 2), norm1 and norm2 hold the norms' inputs (o_proj's
/// and down_proj's outputs) instead of their outputs. With q/k norms, qRaw and kRaw hold the
/// projections before them; otherwise those four views are empty. With norms around the sublayers
/// (Gemma 3), oOut and downOut hold o_proj's and down_proj's outputs, the output norms' inputs;
/// otherwise they are empty.
struct LayerActivations {
    let norm1: FloatPtr, rstd1: FloatPtr    // (T, C), (T): input_layernorm
    let qRaw: FloatPtr, kRaw: FloatPtr      // (T, Q), (T, KV): q_proj, k_proj before q_norm, k_norm
    let qRstd: FloatPtr, kRstd: FloatPtr    // (T·Q/n), (T·KV/n): their rstd, n = the norm's channels
    let q: FloatPtr, k: FloatPtr, v: FloatPtr  // (T, Q), (T, KV), (T, KV): after RoPE
    let att: FloatPtr, lse: FloatPtr        // (T, Q), (T, H): attention output, softmax log-sum-exp
    let mid: FloatPtr                       // (T, C): residual stream after attention
    let norm2: FloatPtr, rstd2: FloatPtr    // (T, C), (T): post_attention_layernorm
    let gate: FloatPtr, up: FloatPtr, hidden: FloatPtr  // (T, I) ×3: act(gate) ⊙ up
    let oOut: FloatPtr, oRstd: FloatPtr     // (T, C), (T): post_attention_layernorm's input and rstd
    let downOut: FloatPtr, downRstd: FloatPtr  // (T, C), (T): post_feedforward_layernorm's
}

/// The final norm and the LM head's rows (T tokens, S scored rows).
struct OutputActivations {
    let finalNormOut: FloatPtr, finalRstd: FloatPtr  // (T, C), (T)
    let headIn: FloatPtr                             // (S, C): the final norm's output at the scored rows
    let headLSE: FloatPtr, logp: FloatPtr, logitSum: FloatPtr  // (S) each
    let entropy: FloatPtr, top1: FloatPtr            // (S) each: softmax entropy, argmax == target (1 or 0)
    /// (S, V): the head's softmax, kept by forward for backward; nil: backward recomputes it.
    let probabilities: FloatPtr?
}

/// Gradient scratch shared by all layers (only in a model that runs backward).
struct GradientScratch {
    let dResidual: FloatPtr, dNorm: FloatPtr             // (T, C)
    let dQ: FloatPtr, dK: FloatPtr, dV: FloatPtr, dAtt: FloatPtr  // (T, Q), (T, KV) ×2, (T, Q)
    let dKRaw: FloatPtr                                  // (T, KV) with q/k norms (d of k before k_norm), else empty
    let dGate: FloatPtr, dUp: FloatPtr, dHidden: FloatPtr  // (T, I)
    let dHeadIn: FloatPtr                                // (S, C)
}

/// What a forward pass keeps of the decoder's layers.
enum KeptActivations {
    /// One layer slot reused by every layer, two residual buffers in turn: a frozen model.
    case oneLayer
    /// Every layer's activations and every residual: backward reads them as they are.
    case everyLayer
    /// Every layer's input (the residual stream entering it) and one layer slot: backward recomputes
    /// each layer's forward into the slot from its input (gradient checkpointing).
    case layerInputs

    func layerSlots(layers: Int) -> Int { self == .everyLayer ? layers : 1 }
    func residuals(layers: Int) -> Int { self == .oneLayer ? 2 : layers + 1 }
}

/// All activation storage in one allocation, carved into named views (see `KeptActivations`).
final class Activations {
    let tokens: Int, longest: Int, scored: Int
    private let storage: FloatBuffer
    private let layers: [LayerActivations]
    private let residuals: [FloatPtr]
    let output: OutputActivations
    let headScratch: FloatPtr                // (chunk, V)
    let attentionScratch: FloatPtr           // AttentionShape.scratchCount(longest:); longest = most keys a row sees (prefix + own)
    let kept: KeptActivations
    let gradients: GradientScratch?

    init(config c: ModelConfig, tokens T: Int, longest: Int, scored S: Int, kept: KeptActivations,
         blockRows: Int, headChunk: Int, withGradients: Bool, keepProbabilities: Bool) {
        self.tokens = T; self.longest = longest; self.scored = S; self.kept = kept
        storage = FloatBuffer(count: Self.floatCount(config: c, tokens: T, longest: longest, scored: S, kept: kept,
                                                     blockRows: blockRows, headChunk: headChunk, withGradients: withGradients,
                                                     keepProbabilities: keepProbabilities))
        var next = 0
        let base = storage.pointer
        let views = Self.carve(c, tokens: T, longest: longest, scored: S, kept: kept, blockRows: blockRows,
                               headChunk: headChunk, withGradients: withGradients, keepProbabilities: keepProbabilities) { n in
            defer { next += Self.aligned(n) }
            return base + next
        }
        layers = views.layers
        residuals = views.residuals
        output = views.output
        headScratch = views.scratch.head
        attentionScratch = views.scratch.attention
        gradients = views.gradients
    }

    /// Floats the storage for a batch of this size takes.
    static func floatCount(config c: ModelConfig, tokens T: Int, longest: Int, scored S: Int, kept: KeptActivations,
                           blockRows: Int, headChunk: Int, withGradients: Bool, keepProbabilities: Bool) -> Int {
        var total = 0
        let measuring = UnsafeMutablePointer<Float>(bitPattern: 64)!  // never dereferenced
        _ = carve(c, tokens: T, longest: longest, scored: S, kept: kept, blockRows: blockRows, headChunk: headChunk,
                  withGradients: withGradients, keepProbabilities: keepProbabilities) { n in total += aligned(n); return measuring }
        return total
    }

    /// Views start on 16-float boundaries so every row block is aligned for SIMD.
    private static func aligned(_ n: Int) -> Int { (n + 15) / 16 * 16 }

    /// Every view, in one order, from `take(n)` giving n floats: run once to measure and once to carve.
    private static func carve(_ c: ModelConfig, tokens T: Int, longest: Int, scored S: Int, kept: KeptActivations, blockRows: Int,
                              headChunk: Int, withGradients: Bool, keepProbabilities: Bool, _ take: (Int) -> FloatPtr)
        -> (layers: [LayerActivations], residuals: [FloatPtr], output: OutputActivations,
            scratch: (head: FloatPtr, attention: FloatPtr), gradients: GradientScratch?) {
        let C = c.hiddenSize, I = c.intermediateSize, Q = c.qDim, KV = c.kvDim, H = c.numHeads
        // q/k norms keep the projections before them, and one rstd per normalized row.
        let qkNorm = c.spec.qkNorm != .none, perHead = c.spec.qkNorm == .perHead
        let qRstd = qkNorm ? (perHead ? T * H : T) : 0, kRstd = qkNorm ? (perHead ? T * c.numKVHeads : T) : 0
        let around = c.spec.normPlacement == .aroundSublayer
        let layers = (0..<kept.layerSlots(layers: c.numLayers)).map { _ in
            LayerActivations(norm1: take(T * C), rstd1: take(T), qRaw: take(qkNorm ? T * Q : 0), kRaw: take(qkNorm ? T * KV : 0),
                             qRstd: take(qRstd), kRstd: take(kRstd), q: take(T * Q), k: take(T * KV), v: take(T * KV),
                             att: take(T * Q), lse: take(T * H), mid: take(T * C), norm2: take(T * C), rstd2: take(T),
                             gate: take(T * I), up: take(T * I), hidden: take(T * I),
                             oOut: take(around ? T * C : 0), oRstd: take(around ? T : 0),
                             downOut: take(around ? T * C : 0), downRstd: take(around ? T : 0))
        }
        let residuals = (0..<kept.residuals(layers: c.numLayers)).map { _ in take(T * C) }
        let output = OutputActivations(finalNormOut: take(T * C), finalRstd: take(T), headIn: take(S * C), headLSE: take(S),
                                       logp: take(S), logitSum: take(S), entropy: take(S), top1: take(S),
                                       probabilities: keepProbabilities ? take(S * c.vocabSize) : nil)
        // A kept softmax (S rows) is also the head's scratch: a chunk is at most S rows.
        let scratch = (head: output.probabilities ?? take(headChunk * c.vocabSize), 
                       attention: take(AttentionShape(heads: H, kvHeads: c.numKVHeads, headDim: c.headDim, blockRows: blockRows)
                                          .scratchCount(longest: longest)))
        let gradients = withGradients
            ? GradientScratch(dResidual: take(T * C), dNorm: take(T * C), dQ: take(T * Q), dK: take(T * KV),
                              dV: take(T * KV), dAtt: take(T * Q), dKRaw: take(qkNorm ? T * KV : 0), dGate: take(T * I), dUp: take(T * I),
                              dHidden: take(T * I), dHeadIn: take(S * C))
            : nil
        return (layers, residuals, output, scratch, gradients)
    }

    func layer(_ l: Int) -> LayerActivations { layers.count == 1 ? layers[0] : layers[l] }
    /// The residual stream entering layer l (l == numLayers: after the last layer). A frozen model
    /// alternates between two buffers.
    func residual(_ l: Int) -> FloatPtr { kept == .oneLayer ? residuals[l % 2] : residuals[l] }
}
