import DPOKernels
import DPOSupport
import Foundation

/// A Llama-family decoder on one flat parameter buffer. `forward` computes the log-probability of
/// every scored token of a packed batch; `backward` takes dL/dlogp for those tokens and accumulates
/// the gradient of every parameter into `grads` (same layout as `params`).
///
/// Numeric semantics: fp32 storage and compute; RMSNorm, RoPE (rotate-half) and softmax as in
/// transformers; log-probs from a log-sum-exp over the whole vocabulary.
public final class Transformer {
    public let config: ModelConfig
    public let layout: ParameterLayout
    public let params: FloatBuffer
    /// Allocated by `enableGradients()`; nil for a frozen model (the reference).
    public private(set) var grads: FloatBuffer?

    /// Called by `backward` as layers' gradients become final (see `backward`); the trainer sets it
    /// for the last micro-batch of a step to start reducing gradients during the backward pass.
    public var layerDoneHook: ((Int) -> Void)?

    /// Rows of logits computed at once in the LM head.
    public var headChunk = 128
    public var attentionBlockRows = 128

    private var rope: RopeTable
    private var acts: Activations?
    private var lastBatchTokens = 0

    public init(config: ModelConfig, params: FloatBuffer? = nil) {
        self.config = config
        layout = ParameterLayout(config: config)
        if let params { precondition(params.count == layout.count) }
        self.params = params ?? FloatBuffer(count: layout.count)
        rope = RopeTable(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling,
                         positions: max(config.maxPositionEmbeddings, 1))
    }

    public var parameterCount: Int { layout.count }

    /// Makes the model trainable: a zeroed gradient buffer, and activations kept for every layer.
    public func enableGradients() {
        if grads == nil { grads = FloatBuffer(count: layout.count) }
        acts = nil
    }

    /// Fills the parameters as transformers initialises a fresh model: normal(0, std) weights,
    /// zero biases, unit norm weights.
    public func initializeRandom(seed: UInt64, std: Float = 0.02) {
        var rng = SplitMix64(seed: seed)
        for t in layout.tensors {
            let p = params.pointer + t.offset
            if layout.isNormWeight(t) {
                p.update(repeating: 1, count: t.count)
            } else if layout.isBias(t) {
                p.update(repeating: 0, count: t.count)
            } else {
                for i in 0..<t.count { p[i] = std * rng.nextGaussian() }
            }
        }
    }

    /// Makes sure activation storage fits a batch; allocates only when it grows.
    public func reserve(tokens: Int, longestSequence: Int, scoredRows: Int) {
        if longestSequence > rope.positions {
            rope = RopeTable(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling,
                             positions: longestSequence)
        }
        if let a = acts, a.tokens >= tokens, a.longest >= longestSequence, a.scored >= scoredRows { return }
        let old = acts
        acts = Activations(config: config, tokens: max(tokens, old?.tokens ?? 0),
                           longest: max(longestSequence, old?.longest ?? 0),
                           scored: max(scoredRows, old?.scored ?? 0),
                           layerSlots: grads == nil ? 1 : config.numLayers,
                           blockRows: attentionBlockRows, headChunk: headChunk, withGradients: grads != nil)
    }

    /// Log-probabilities of the scored tokens, valid after `forward` (`batch.scoredCount` values).
    public var scoredLogProbs: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.logp, count: lastScored)
    }
    /// Sum over the vocabulary of each scored row's logits (for the `logits/*` metrics).
    public var scoredLogitSums: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.logitSum, count: lastScored)
    }
    private var lastScored = 0

    /// Runs the decoder and the LM head over the scored rows.
    public func forward(_ batch: TokenBatch) {
        runDecoder(batch)
        let a = acts!, c = config, S = batch.scoredCount
        batch.scoredRows.withUnsafeBufferPointer { rows in
            for i in 0..<S {
                (a.headIn + i * c.hiddenSize).update(from: a.finalNormOut + Int(rows[i]) * c.hiddenSize, count: c.hiddenSize)
            }
        }
        batch.scoredTargets.withUnsafeBufferPointer { targets in
            logProbForward(logp: a.logp, lse: a.headLSE, logitSum: a.logitSum, hidden: a.headIn,
                           weight: params.pointer + layout.head, targets: targets.baseAddress!, rows: S,
                           channels: c.hiddenSize, vocab: c.vocabSize, chunk: headChunk, scratch: a.headScratch)
        }
        lastScored = S
    }

    /// Logits of scored rows [first, first + count) of the last `forward`, into `out` (count × vocab):
    /// a chunk at a time, for eval (KL against the reference) and generation.
    public func scoredRowLogits(first: Int, count: Int, into out: FloatPtr) {
        precondition(first >= 0 && first + count <= lastScored)
        let a = acts!, c = config
        gemm(transA: false, transB: true, m: count, n: c.vocabSize, k: c.hiddenSize, a: a.headIn + first * c.hiddenSize,
             lda: c.hiddenSize, b: params.pointer + layout.head, ldb: c.hiddenSize, beta: 0, c: out, ldc: c.vocabSize)
    }

    /// Log-sum-exp of each scored row's logits after `forward`.
    public var scoredLogSumExp: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.headLSE, count: lastScored)
    }

    /// Full logits (tokens × vocab) for every position: for tests and generation, not training.
    public func logits(_ batch: TokenBatch) -> [Float] {
        runDecoder(batch)
        let a = acts!, c = config, T = batch.tokenCount
        var out = [Float](repeating: 0, count: T * c.vocabSize)
        out.withUnsafeMutableBufferPointer { o in
            gemm(transA: false, transB: true, m: T, n: c.vocabSize, k: c.hiddenSize, a: a.finalNormOut,
                 lda: c.hiddenSize, b: params.pointer + layout.head, ldb: c.hiddenSize, beta: 0,
                 c: o.baseAddress!, ldc: c.vocabSize)
        }
        return out
    }

    private func runDecoder(_ batch: TokenBatch) {
        reserve(tokens: batch.tokenCount, longestSequence: batch.longestSequence, scoredRows: batch.scoredCount)
        let a = acts!, c = config, T = batch.tokenCount, C = c.hiddenSize, I = c.intermediateSize
        let P = params.pointer
        let shape = AttentionShape(heads: c.numHeads, kvHeads: c.numKVHeads, headDim: c.headDim, blockRows: attentionBlockRows)
        lastBatchTokens = T
        batch.tokens.withUnsafeBufferPointer { tokens in
            embeddingForward(out: a.residual(0), tokens: tokens.baseAddress!, table: P + layout.embed, rows: T, channels: C)
        }
        for l in 0..<c.numLayers {
            let w = layout.layers[l], s = a.slot(l)
            let x = a.residual(l)
            rmsnormForward(out: s.norm1, rstd: s.rstd1, inp: x, weight: P + w.inputNorm, eps: c.rmsNormEps, rows: T, channels: C)
            matmulForward(out: s.q, inp: s.norm1, weight: P + w.q, bias: w.qBias.map { P + $0 }, rows: T, inFeatures: C, outFeatures: c.qDim)
            matmulForward(out: s.k, inp: s.norm1, weight: P + w.k, bias: w.kBias.map { P + $0 }, rows: T, inFeatures: C, outFeatures: c.kvDim)
            matmulForward(out: s.v, inp: s.norm1, weight: P + w.v, bias: w.vBias.map { P + $0 }, rows: T, inFeatures: C, outFeatures: c.kvDim)
            if c.layerUsesRope[l] {
                applyRope(s.q, heads: c.numHeads, batch: batch, inverse: false)
                applyRope(s.k, heads: c.numKVHeads, batch: batch, inverse: false)
            }
            batch.starts.withUnsafeBufferPointer { starts in
                batch.lengths.withUnsafeBufferPointer { lengths in
                    attentionForward(out: s.att, lse: s.lse, q: s.q, k: s.k, v: s.v, starts: starts.baseAddress!,
                                     lengths: lengths.baseAddress!, sequences: batch.sequenceCount, shape: shape,
                                     scratch: a.attentionScratch)
                }
            }
            // residual_mid = x + o_proj(att)
            matmulForward(out: s.mid, inp: s.att, weight: P + w.o, bias: w.oBias.map { P + $0 }, rows: T, inFeatures: c.qDim, outFeatures: C)
            for i in 0..<(T * C) { s.mid[i] += x[i] }
            rmsnormForward(out: s.norm2, rstd: s.rstd2, inp: s.mid, weight: P + w.postNorm, eps: c.rmsNormEps, rows: T, channels: C)
            matmulForward(out: s.gate, inp: s.norm2, weight: P + w.gate, bias: w.gateBias.map { P + $0 }, rows: T, inFeatures: C, outFeatures: I)
            matmulForward(out: s.up, inp: s.norm2, weight: P + w.up, bias: w.upBias.map { P + $0 }, rows: T, inFeatures: C, outFeatures: I)
            swigluForward(out: s.hidden, gate: s.gate, up: s.up, count: T * I)
            let next = a.residual(l + 1)
            matmulForward(out: next, inp: s.hidden, weight: P + w.down, bias: w.downBias.map { P + $0 }, rows: T, inFeatures: I, outFeatures: C)
            for i in 0..<(T * C) { next[i] += s.mid[i] }
        }
        rmsnormForward(out: a.finalNormOut, rstd: a.finalRstd, inp: a.residual(c.numLayers), weight: P + layout.finalNorm,
                       eps: c.rmsNormEps, rows: T, channels: C)
    }

    private func applyRope(_ x: FloatPtr, heads: Int, batch: TokenBatch, inverse: Bool) {
        batch.positions.withUnsafeBufferPointer { pos in
            rope.cos.withUnsafeBufferPointer { cos in
                rope.sin.withUnsafeBufferPointer { sin in
                    ropeApply(x, positions: pos.baseAddress!, cos: cos.baseAddress!, sin: sin.baseAddress!,
                              rows: batch.tokenCount, heads: heads, headDim: config.headDim, inverse: inverse)
                }
            }
        }
    }

    /// Accumulates dL/dθ into `grads`, given dL/dlogp for each scored token of the batch that the
    /// last `forward` ran. `onLayerDone(l)` (or, without it, `layerDoneHook`) is called when layer l's
    /// gradients are final for this batch, and with -1 when the embedding's are: from then on the
    /// gradient buffer from layer l's first element to its end is final. It is called for this
    /// batch (last layer first), so a caller can start reducing them while backward goes on.
    public func backward(_ batch: TokenBatch, dlogp: UnsafePointer<Float>, onLayerDone: ((Int) -> Void)? = nil) {
        guard let gradBuffer = grads, let a = acts, a.slots.count == config.numLayers else {
            preconditionFailure("backward needs enableGradients() before forward")
        }
        precondition(batch.tokenCount == lastBatchTokens, "backward must follow forward on the same batch")
        let c = config, T = batch.tokenCount, C = c.hiddenSize, I = c.intermediateSize, S = batch.scoredCount
        let P = params.pointer, G = gradBuffer.pointer
        let shape = AttentionShape(heads: c.numHeads, kvHeads: c.numKVHeads, headDim: c.headDim, blockRows: attentionBlockRows)

        // LM head: d(head input) for the scored rows, scattered back into d(final norm output).
        batch.scoredTargets.withUnsafeBufferPointer { targets in
            logProbBackward(dhidden: a.dHeadIn, dweight: G + layout.head, dlogp: dlogp, hidden: a.headIn,
                            weight: P + layout.head, lse: a.headLSE, targets: targets.baseAddress!, rows: S,
                            channels: C, vocab: c.vocabSize, chunk: headChunk, scratch: a.headScratch)
        }
        a.dNorm.update(repeating: 0, count: T * C)
        batch.scoredRows.withUnsafeBufferPointer { rows in
            for i in 0..<S {
                let d = a.dNorm + Int(rows[i]) * C, g = a.dHeadIn + i * C
                for j in 0..<C { d[j] += g[j] }
            }
        }
        let dx = a.dResidual
        dx.update(repeating: 0, count: T * C)
        rmsnormBackward(dinp: dx, dweight: G + layout.finalNorm, dout: a.dNorm, inp: a.residual(c.numLayers),
                        weight: P + layout.finalNorm, rstd: a.finalRstd, rows: T, channels: C)

        for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
            let w = layout.layers[l], s = a.slot(l)
            // dx is d(residual out) == d(mid) through the skip connection; the MLP adds to it.
            matmulBackward(dinp: a.dHidden, dweight: G + w.down, dbias: w.downBias.map { G + $0 }, dout: dx,
                           inp: s.hidden, weight: P + w.down, rows: T, inFeatures: I, outFeatures: C, accumulateInput: false)
            swigluBackward(dgate: a.dGate, dup: a.dUp, dout: a.dHidden, gate: s.gate, up: s.up, count: T * I)
            matmulBackward(dinp: a.dNorm, dweight: G + w.gate, dbias: w.gateBias.map { G + $0 }, dout: a.dGate,
                           inp: s.norm2, weight: P + w.gate, rows: T, inFeatures: C, outFeatures: I, accumulateInput: false)
            matmulBackward(dinp: a.dNorm, dweight: G + w.up, dbias: w.upBias.map { G + $0 }, dout: a.dUp,
                           inp: s.norm2, weight: P + w.up, rows: T, inFeatures: C, outFeatures: I, accumulateInput: true)
            rmsnormBackward(dinp: dx, dweight: G + w.postNorm, dout: a.dNorm, inp: s.mid, weight: P + w.postNorm,
                            rstd: s.rstd2, rows: T, channels: C)
            // Attention block; dx is now d(mid) == d(residual in) through the skip connection.
            matmulBackward(dinp: a.dAtt, dweight: G + w.o, dbias: w.oBias.map { G + $0 }, dout: dx, inp: s.att,
                           weight: P + w.o, rows: T, inFeatures: c.qDim, outFeatures: C, accumulateInput: false)
            a.dK.update(repeating: 0, count: T * c.kvDim)
            a.dV.update(repeating: 0, count: T * c.kvDim)
            batch.starts.withUnsafeBufferPointer { starts in
                batch.lengths.withUnsafeBufferPointer { lengths in
                    attentionBackward(dq: a.dQ, dk: a.dK, dv: a.dV, dout: a.dAtt, q: s.q, k: s.k, v: s.v, out: s.att,
                                      lse: s.lse, starts: starts.baseAddress!, lengths: lengths.baseAddress!,
                                      sequences: batch.sequenceCount, shape: shape, scratch: a.attentionScratch,
                                      longest: a.longest)
                }
            }
            if c.layerUsesRope[l] {
                applyRope(a.dQ, heads: c.numHeads, batch: batch, inverse: true)
                applyRope(a.dK, heads: c.numKVHeads, batch: batch, inverse: true)
            }
            matmulBackward(dinp: a.dNorm, dweight: G + w.q, dbias: w.qBias.map { G + $0 }, dout: a.dQ, inp: s.norm1,
                           weight: P + w.q, rows: T, inFeatures: C, outFeatures: c.qDim, accumulateInput: false)
            matmulBackward(dinp: a.dNorm, dweight: G + w.k, dbias: w.kBias.map { G + $0 }, dout: a.dK, inp: s.norm1,
                           weight: P + w.k, rows: T, inFeatures: C, outFeatures: c.kvDim, accumulateInput: true)
            matmulBackward(dinp: a.dNorm, dweight: G + w.v, dbias: w.vBias.map { G + $0 }, dout: a.dV, inp: s.norm1,
                           weight: P + w.v, rows: T, inFeatures: C, outFeatures: c.kvDim, accumulateInput: true)
            rmsnormBackward(dinp: dx, dweight: G + w.inputNorm, dout: a.dNorm, inp: a.residual(l), weight: P + w.inputNorm,
                            rstd: s.rstd1, rows: T, channels: C)
            (onLayerDone ?? layerDoneHook)?(l)
        }
        batch.tokens.withUnsafeBufferPointer { tokens in
            embeddingBackward(dtable: G + layout.embed, dout: dx, tokens: tokens.baseAddress!, rows: T, channels: C,
                              skipToken: c.padTokenID)
        }
        (onLayerDone ?? layerDoneHook)?(-1)
    }
}

/// All activation storage in one allocation, carved into named views. A frozen model keeps one
/// layer slot and reuses it; a trainable one keeps every layer's activations for backward.
final class Activations {
    struct Slot {
        var norm1, rstd1, q, k, v, att, lse, mid, norm2, rstd2, gate, up, hidden: FloatPtr
    }
    let tokens: Int, longest: Int, scored: Int
    let storage: FloatBuffer
    let slots: [Slot]
    private let residuals: [FloatPtr]
    let finalNormOut, finalRstd, headIn, headLSE, logp, logitSum, headScratch, attentionScratch: FloatPtr
    // Gradient scratch shared by all layers (only with gradients).
    let dResidual, dNorm, dQ, dK, dV, dAtt, dGate, dUp, dHidden, dHeadIn: FloatPtr

    init(config c: ModelConfig, tokens T: Int, longest: Int, scored S: Int, layerSlots: Int,
         blockRows: Int, headChunk: Int, withGradients: Bool) {
        self.tokens = T; self.longest = longest; self.scored = S
        let C = c.hiddenSize, I = c.intermediateSize, Q = c.qDim, KV = c.kvDim, H = c.numHeads
        var sizes: [Int] = []
        func take(_ n: Int) -> Int { sizes.append(n); return sizes.count - 1 }
        var slotIndex: [[Int]] = []
        for _ in 0..<layerSlots {
            slotIndex.append([T * C, T, T * Q, T * KV, T * KV, T * Q, T * H, T * C, T * C, T, T * I, T * I, T * I].map(take))
        }
        let residualCount = layerSlots == c.numLayers ? c.numLayers + 1 : 2
        let residualIndex = (0..<residualCount).map { _ in take(T * C) }
        let fixed = [T * C, T, S * C, S, S, S, headChunk * c.vocabSize, 2 * blockRows * max(longest, 1)].map(take)
        let grads = withGradients ? [T * C, T * C, T * Q, T * KV, T * KV, T * Q, T * I, T * I, T * I, S * C].map(take) : []
        // Views start on 16-float boundaries so every row block is aligned for SIMD.
        var offsets: [Int] = []
        var total = 0
        for n in sizes { offsets.append(total); total += (n + 15) / 16 * 16 }
        storage = FloatBuffer(count: total)
        let base = storage.pointer
        func ptr(_ i: Int) -> FloatPtr { base + offsets[i] }
        slots = slotIndex.map { ix in
            Slot(norm1: ptr(ix[0]), rstd1: ptr(ix[1]), q: ptr(ix[2]), k: ptr(ix[3]), v: ptr(ix[4]), att: ptr(ix[5]),
                 lse: ptr(ix[6]), mid: ptr(ix[7]), norm2: ptr(ix[8]), rstd2: ptr(ix[9]), gate: ptr(ix[10]),
                 up: ptr(ix[11]), hidden: ptr(ix[12]))
        }
        residuals = residualIndex.map(ptr)
        finalNormOut = ptr(fixed[0]); finalRstd = ptr(fixed[1]); headIn = ptr(fixed[2]); headLSE = ptr(fixed[3])
        logp = ptr(fixed[4]); logitSum = ptr(fixed[5]); headScratch = ptr(fixed[6]); attentionScratch = ptr(fixed[7])
        if withGradients {
            dResidual = ptr(grads[0]); dNorm = ptr(grads[1]); dQ = ptr(grads[2]); dK = ptr(grads[3]); dV = ptr(grads[4])
            dAtt = ptr(grads[5]); dGate = ptr(grads[6]); dUp = ptr(grads[7]); dHidden = ptr(grads[8]); dHeadIn = ptr(grads[9])
        } else {
            let none = base
            dResidual = none; dNorm = none; dQ = none; dK = none; dV = none; dAtt = none; dGate = none; dUp = none
            dHidden = none; dHeadIn = none
        }
    }

    func slot(_ layer: Int) -> Slot { slots.count == 1 ? slots[0] : slots[layer] }
    /// The residual stream entering layer l (l == numLayers: after the last layer). A frozen model
    /// alternates between two buffers.
    func residual(_ l: Int) -> FloatPtr { residuals.count == 2 ? residuals[l % 2] : residuals[l] }
}
