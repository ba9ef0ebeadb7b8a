import DPOKernels
import DPOSupport
import Foundation

/// A Llama-family decoder on one flat parameter buffer. `forward` computes the log-probability of
/// every scored token of a packed batch; `backward` takes dL/dlogp for those tokens and accumulates
/// the gradient of every parameter into `parameters.gradients` (same layout as the values).
///
/// Numeric semantics: fp32 storage and compute; RMSNorm, RoPE (rotate-half) and softmax as in
/// transformers; log-probs from a log-sum-exp over the whole vocabulary.
///
/// Each decoder step keeps its forward and its backward side by side below: attention (input norm,
/// q/k/v, RoPE, attention, o_proj, residual) and MLP (post-attention norm, gate/up, SwiGLU, down,
/// residual). What differs between architectures comes from `config.spec`.
public final class Transformer {
    public let config: ModelConfig
    public let layout: ParameterLayout
    /// The weights; their gradients once `enableGradients()` has run. A model without gradients is
    /// frozen: backward still gives input gradients but runs no weight-gradient product.
    public let parameters: ParameterSet
    /// Every matrix product of this model goes through it.
    public let matmul: any MatmulBackend
    /// The decoder linears' weights kept in bf16 outside `parameters` (a frozen model loaded with
    /// `ModelDirectory.load(frozen: true)`), or nil: every weight is in `parameters`.
    public let frozenWeights: FrozenWeights?
    /// Where a frozen linear's weight is widened to fp32 before its product.
    private var widened: FloatBuffer?
    /// LoRA adapters beside the weights (see `attach`); nil: the model is its weights alone.
    public private(set) var adapters: LoRAAdapters?
    /// What training updates: the adapters when there are some, else the weights.
    public var trainable: ParameterSet { adapters?.parameters ?? parameters }

    /// Called by `backward` with an offset into `parameters` each time the gradients from there to
    /// the end of the buffer are final for the batch (after each layer, last layer first; 0 once the
    /// embedding's are): the trainer reduces them while backward goes on.
    public var onGradientsFinal: ((Int) -> Void)?

    /// Seconds spent in `forward` and `backward` since the model was made (for `dpo-dist bench`).
    public private(set) var forwardSeconds = 0.0
    public private(set) var backwardSeconds = 0.0

    /// Rows of logits computed at once in the LM head.
    public var headChunk = 128
    /// A model that trains keeps the LM head's softmax of the scored rows from forward for backward
    /// when it takes at most this many bytes (scored rows × vocabulary × 4), sparing backward a second
    /// head product; above it, backward computes it again (the same bits either way).
    public var keptProbabilityBytes = 512 << 20
    public var attentionBlockRows = 128

    private var rope: RopeTable
    /// The sliding layers' table when they rotate with a theta of their own (Gemma 3).
    private var slidingRope: RopeTable?
    private var acts: Activations?
    private var lastBatchTokens = 0
    private var lastScored = 0
    /// The kept head softmax is the last forward's, not yet overwritten by a backward.
    private var keptSoftmaxIsCurrent = false

    /// `values` holds the weights in `ParameterLayout(config:)`'s layout; nil allocates them zeroed.
    /// With `frozenWeights`, the weights it holds are read from there, never from `values`.
    public init(config: ModelConfig, values: FloatBuffer? = nil, matmul: any MatmulBackend = OpenBLASFP32(),
                frozenWeights: FrozenWeights? = nil) {
        self.config = config
        layout = ParameterLayout(config: config)
        parameters = ParameterSet(tensors: layout.tensors, values: values)
        self.matmul = matmul
        self.frozenWeights = frozenWeights.flatMap { $0.isEmpty ? nil : $0 }
        (rope, slidingRope) = Self.ropeTables(config, positions: max(config.maxPositionEmbeddings, 1))
    }

    private static func ropeTables(_ c: ModelConfig, positions: Int) -> (RopeTable, RopeTable?) {
        (RopeTable(headDim: c.rotaryDim, theta: c.ropeTheta, scaling: c.ropeScaling, positions: positions),
         c.spec.slidingRopeTheta.map { RopeTable(headDim: c.rotaryDim, theta: $0, scaling: .none, positions: positions) })
    }

    public var parameterCount: Int { layout.count }

    /// Bytes the weights take: fp32 in `parameters`, bf16 for the frozen ones.
    public var weightBytes: (fp32: Int, bf16: Int) { layout.weightBytes(frozen: frozenWeights) }

    /// A hash of every weight's bits (the frozen ones' bf16 bits, the others' fp32 bits), in the
    /// layout's order: ranks compare it to make sure they start from the same model.
    public func weightsFingerprint(into hash: inout FNV1a) {
        let frozen = frozenWeights?.tensorNames ?? []
        for t in layout.tensors where !frozen.contains(t.name) {
            hash.add(words: parameters.values.pointer + t.offset, count: t.count)
        }
        frozenWeights?.fingerprint(into: &hash)
    }

    /// Whether backward recomputes each layer's forward from its saved input instead of reading
    /// activations kept by forward (TRL's `gradient_checkpointing`): forward keeps each layer's input
    /// (tokens × hidden) and one layer's activations. The recomputation runs the same kernels on the
    /// same inputs and weights, so every gradient has the same bits either way; it costs about one
    /// more forward pass per step.
    public private(set) var gradientCheckpointing = false

    /// Makes the model trainable: a zeroed gradient buffer, and activations kept for backward (every
    /// layer's, or with `checkpointing` each layer's input; see `gradientCheckpointing`).
    public func enableGradients(checkpointing: Bool = false) {
        precondition(frozenWeights == nil || adapters != nil, "a model with frozen bf16 weights trains adapters only")
        trainable.enableGradients()
        gradientCheckpointing = checkpointing
        acts = nil
    }

    /// Puts LoRA adapters beside the weights: from now on every adapted linear adds its adapter's
    /// product, and `trainable` is the adapters.
    public func attach(_ adapters: LoRAAdapters) {
        self.adapters = adapters
        acts = nil
    }

    /// A second model over the same weight buffer (no copy), with its own activations and backend,
    /// and `adapters` (nil: none): the reference of a LoRA run, the base with the adapters off or
    /// with the starting adapter.
    public func sharingWeights(adapters: LoRAAdapters?, matmul: any MatmulBackend) -> Transformer {
        let model = Transformer(config: config, values: parameters.values, matmul: matmul, frozenWeights: frozenWeights)
        if let adapters { model.attach(adapters) }
        return model
    }

    /// What forward keeps, as the model is now.
    private var kept: KeptActivations {
        trainable.gradients == nil ? .oneLayer : gradientCheckpointing ? .layerInputs : .everyLayer
    }

    /// Fills the parameters as transformers initialises a fresh model: normal(0, std) weights,
    /// zero biases, unit norm weights.
    public func initializeRandom(seed: UInt64, std: Float = 0.02) {
        var rng = SplitMix64(seed: seed)
        for t in layout.tensors {
            let p = parameters.values.pointer + t.offset
            if layout.isNormWeight(t) {
                p.update(repeating: 1 - config.spec.normWeightOffset, count: t.count)
            } else if layout.isBias(t) {
                p.update(repeating: 0, count: t.count)
            } else {
                for i in 0..<t.count { p[i] = std * rng.nextGaussian() }
            }
        }
    }

    /// Whether activations for `scoredRows` rows through the head keep its softmax (see `keptProbabilityBytes`).
    private func keepsProbabilities(scoredRows: Int) -> Bool {
        trainable.gradients != nil && 4 * scoredRows * config.vocabSize <= keptProbabilityBytes
    }

    /// Times `reserve` has allocated activation storage.
    public private(set) var activationAllocations = 0

    /// Makes sure activation storage fits a batch; allocates only when it grows.
    public func reserve(tokens: Int, longestSequence: Int, scoredRows: Int) {
        if longestSequence > rope.positions {
            (rope, slidingRope) = Self.ropeTables(config, positions: longestSequence)
        }
        if let a = acts, a.tokens >= tokens, a.longest >= longestSequence, a.scored >= scoredRows { return }
        let old = (tokens: acts?.tokens ?? 0, longest: acts?.longest ?? 0, scored: acts?.scored ?? 0)
        // The old storage goes before the new is allocated: both at once could be the process's peak
        // when a later micro-batch is the longest.
        acts = nil
        activationAllocations += 1
        let scored = max(scoredRows, old.scored)
        acts = Activations(config: config, tokens: max(tokens, old.tokens), longest: max(longestSequence, old.longest),
                           scored: scored, kept: kept, blockRows: attentionBlockRows, headChunk: headChunk,
                           withGradients: trainable.gradients != nil, keepProbabilities: keepsProbabilities(scoredRows: scored))
        adapters?.reserve(tokens: acts!.tokens)
    }

    /// Bytes of activation storage a batch of `tokens` tokens (longest sequence `longestSequence`,
    /// `scoredRows` rows through the head) needs in this model as it is (frozen, trainable, or
    /// trainable with gradient checkpointing), with the scratch a frozen linear's weight is widened into.
    public func activationBytes(tokens: Int, longestSequence: Int, scoredRows: Int) -> Int {
        4 * Activations.floatCount(config: config, tokens: tokens, longest: longestSequence, scored: scoredRows,
                                   kept: kept, blockRows: attentionBlockRows, headChunk: headChunk,
                                   withGradients: trainable.gradients != nil,
                                   keepProbabilities: keepsProbabilities(scoredRows: scoredRows))
            + 4 * (adapters?.activationFloats(tokens: tokens) ?? 0) + 4 * (frozenWeights?.largestView ?? 0)
    }

    /// Log-probabilities of the scored tokens, valid after `forward` (`batch.scoredCount` values).
    public var scoredLogProbs: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.output.logp, count: lastScored)
    }
    /// Sum over the vocabulary of each scored row's logits (for the `logits/*` metrics).
    public var scoredLogitSums: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.output.logitSum, count: lastScored)
    }
    /// Softmax entropy of each scored row's logits (TRL's `entropy` metric).
    public var scoredEntropy: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.output.entropy, count: lastScored)
    }
    /// 1 where a scored row's target is its logits' (first) argmax, else 0 (`mean_token_accuracy`).
    public var scoredTop1: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.output.top1, count: lastScored)
    }
    /// Log-sum-exp of each scored row's logits after `forward`.
    public var scoredLogSumExp: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: acts!.output.headLSE, count: lastScored)
    }

    // MARK: - Forward and backward of the whole model

    /// Runs the decoder and the LM head over the scored rows. `weightsUnchanged`: the weights are
    /// those of the last forward (generation says so, to spare a backend's conversion of them).
    public func forward(_ batch: TokenBatch, weightsUnchanged: Bool = false) {
        let started = DispatchTime.now().uptimeNanoseconds
        defer { forwardSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        runDecoder(batch, weightsUnchanged: weightsUnchanged)
        let out = acts!.output, S = batch.scoredCount, C = config.hiddenSize
        batch.withPointers { b in
            gatherRows(out: out.headIn, inp: out.finalNormOut, rows: b.scoredRows, count: S, channels: C)
            logProbForward(logp: out.logp, lse: out.headLSE, logitSum: out.logitSum, entropy: out.entropy, top1: out.top1,
                           hidden: out.headIn, weight: parameters.values.pointer + layout.head, targets: b.scoredTargets,
                           rows: S, channels: C, vocab: config.vocabSize, chunk: headChunk, scratch: acts!.headScratch,
                           keep: out.probabilities, matmul: matmul)
        }
        lastScored = S
        keptSoftmaxIsCurrent = out.probabilities != nil
    }

    /// Accumulates dL/dθ into `parameters.gradients`, given dL/dlogp for each scored token of the
    /// batch that the last `forward` ran. Calls `onGradientsFinal` as layers finish (see there).
    public func backward(_ batch: TokenBatch, dlogp: UnsafePointer<Float>) {
        guard let a = acts, a.kept != .oneLayer, let d = a.gradients else {
            preconditionFailure("backward needs enableGradients() before forward")
        }
        precondition(batch.tokenCount == lastBatchTokens, "backward must follow forward on the same batch")
        let started = DispatchTime.now().uptimeNanoseconds
        defer { backwardSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
        let T = batch.tokenCount, C = config.hiddenSize, S = batch.scoredCount
        let P = parameters.values.pointer, G = parameters.gradients?.pointer
        batch.withPointers { b in
            // LM head: d(head input) for the scored rows, scattered back into d(final norm output).
            logProbBackward(dhidden: d.dHeadIn, dweight: G.map { $0 + layout.head }, dlogp: dlogp, hidden: a.output.headIn,
                            weight: P + layout.head, targets: b.scoredTargets, rows: S,
                            channels: C, vocab: config.vocabSize, chunk: headChunk, scratch: a.headScratch,
                            kept: keptSoftmaxIsCurrent ? a.output.probabilities : nil, matmul: matmul)
            keptSoftmaxIsCurrent = false  // backward overwrote it
            d.dNorm.update(repeating: 0, count: T * C)
            scatterAddRows(dinp: d.dNorm, dout: d.dHeadIn, rows: b.scoredRows, count: S, channels: C)
            let dx = d.dResidual
            dx.update(repeating: 0, count: T * C)
            normBackward(layout.finalNorm, dinp: dx, dout: d.dNorm, inp: a.residual(config.numLayers),
                         rstd: a.output.finalRstd, rows: T)
            for l in stride(from: config.numLayers - 1, through: 0, by: -1) {
                // The slot still holds the last layer from forward; an earlier layer is run again from
                // its saved input. No new `weightsAreFixed`: the weights are those of this pass, so a
                // backend's converted copies of them stay valid and the products give forward's bits.
                if a.kept == .layerInputs, l < config.numLayers - 1 { recomputeLayer(l, batch: b) }
                // dx is d(residual out); through the skip connections it becomes d(residual in).
                mlpBackward(layer: l, dx: dx, rows: T)
                attentionBackward(layer: l, dx: dx, batch: b)
                onGradientsFinal?(adapters?.layerRanges[l].lowerBound ?? layout.layers[l].range.lowerBound)
            }
            if let G {
                if config.spec.scalesEmbedding { scaleInPlace(dx, T * C, embeddingScale) }
                embeddingBackward(dtable: G + layout.embed, dout: dx, tokens: b.tokens, rows: T, channels: C,
                                  skipToken: config.padTokenID)
            }
            onGradientsFinal?(0)
        }
    }

    private func runDecoder(_ batch: TokenBatch, weightsUnchanged: Bool = false) {
        // Data is checked against the vocabulary where it is tokenized (with the row named); this is
        // the backstop that keeps the kernels, built without bounds checks, inside the embedding table.
        precondition(batch.tokens.allSatisfy { $0 >= 0 && Int($0) < config.vocabSize }
                     && batch.scoredTargets.allSatisfy { $0 >= 0 && Int($0) < config.vocabSize },
                     "a token id outside the vocabulary reached the model")
        reserve(tokens: batch.tokenCount, longestSequence: batch.longestSequence, scoredRows: batch.scoredCount)
        let a = acts!, T = batch.tokenCount
        lastBatchTokens = T
        // Weights change only between passes (the optimizer runs after backward): fixed until the next one.
        if !weightsUnchanged {
            matmul.weightsAreFixed(UnsafeBufferPointer(start: parameters.values.pointer, count: parameters.values.count))
        }
        batch.withPointers { b in
            embeddingForward(out: a.residual(0), tokens: b.tokens, table: parameters.values.pointer + layout.embed,
                             rows: T, channels: config.hiddenSize)
            if config.spec.scalesEmbedding { scaleInPlace(a.residual(0), T * config.hiddenSize, embeddingScale) }
            for l in 0..<config.numLayers {
                attentionForward(layer: l, batch: b)
                mlpForward(layer: l, rows: T)
            }
            norm(layout.finalNorm, out: a.output.finalNormOut, rstd: a.output.finalRstd, inp: a.residual(config.numLayers), rows: T)
        }
    }

    /// Layer l's forward again, into the one layer slot, from its input `residual(l)`. It also
    /// writes `residual(l + 1)`, with the bits forward wrote there (the input of a layer whose
    /// backward has already run).
    private func recomputeLayer(_ l: Int, batch b: TokenBatch.Pointers) {
        attentionForward(layer: l, batch: b)
        mlpForward(layer: l, rows: b.tokenCount)
    }

    // MARK: - Attention step: mid = x + o_proj(attention(RoPE(q), RoPE(k), v)), q, k, v of input_layernorm(x)
    // (with the norm after the sublayer, OLMo 2: mid = x + norm(o_proj(attention(...))), q, k, v of x;
    // with q/k norms, q = q_norm(q_proj(·)) and k = k_norm(k_proj(·)) before RoPE; with norms around
    // the sublayer, Gemma 3: mid = x + post_attention_layernorm(o_proj(...)), q, k, v of input_layernorm(x))

    private var normsBefore: Bool { config.spec.normPlacement != .afterSublayer }

    /// Gemma 3's √hidden_size, rounded to fp32 as transformers' embed_scale buffer.
    private var embeddingScale: Float { Float(Double(config.hiddenSize).squareRoot()) }

    /// The norm on a sublayer's output, if it has one, with the buffers that keep its input (the
    /// sublayer's output before it) and rstd: OLMo 2's reuse the input-norm slots, Gemma 3's have their own.
    private func outputNorm(attention: Bool, layer l: Int) -> (w: NormView, inp: FloatPtr, rstd: FloatPtr)? {
        let w = layout.layers[l], s = acts!.layer(l)
        switch config.spec.normPlacement {
        case .beforeSublayer: return nil
        case .afterSublayer: return attention ? (w.inputNorm, s.norm1, s.rstd1) : (w.postNorm, s.norm2, s.rstd2)
        case .aroundSublayer: return attention ? (w.attentionOutputNorm!, s.oOut, s.oRstd) : (w.mlpOutputNorm!, s.downOut, s.downRstd)
        }
    }

    private func attentionForward(layer l: Int, batch b: TokenBatch.Pointers) {
        let a = acts!, w = layout.layers[l], s = a.layer(l), x = a.residual(l), T = b.tokenCount
        let h: FloatPtr  // what q, k and v are projected from
        if normsBefore {
            norm(w.inputNorm, out: s.norm1, rstd: s.rstd1, inp: x, rows: T)
            h = s.norm1
        } else {
            h = x
        }
        // q, k and v read the same h: a converting backend converts it once.
        matmul.holdingOperands(h, nil) {
            if let qNorm = w.qNorm, let kNorm = w.kNorm {
                linear(w.q, out: s.qRaw, inp: h, rows: T)
                linear(w.k, out: s.kRaw, inp: h, rows: T)
                norm(qNorm, out: s.q, rstd: s.qRstd, inp: s.qRaw, rows: T * config.qDim / qNorm.channels)
                norm(kNorm, out: s.k, rstd: s.kRstd, inp: s.kRaw, rows: T * config.kvDim / kNorm.channels)
            } else {
                linear(w.q, out: s.q, inp: h, rows: T)
                linear(w.k, out: s.k, inp: h, rows: T)
            }
            linear(w.v, out: s.v, inp: h, rows: T)
        }
        if config.spec.layerUsesRope[l] {
            rotate(s.q, heads: config.numHeads, layer: l, batch: b, inverse: false)
            rotate(s.k, heads: config.numKVHeads, layer: l, batch: b, inverse: false)
        }
        DPOKernels.attentionForward(out: s.att, lse: s.lse, q: s.q, k: s.k, v: s.v, starts: b.starts, lengths: b.lengths,
                                    prefixStarts: b.prefixStarts, prefixLengths: b.prefixLengths, sequences: b.sequenceCount,
                                    shape: attentionShape(layer: l), scratch: a.attentionScratch, matmul: matmul)
        if let n = outputNorm(attention: true, layer: l) {
            linear(w.o, out: n.inp, inp: s.att, rows: T)
            norm(n.w, out: s.mid, rstd: n.rstd, inp: n.inp, rows: T)
        } else {
            linear(w.o, out: s.mid, inp: s.att, rows: T)
        }
        addInPlace(s.mid, x, count: T * config.hiddenSize)
    }

    /// dx: d(mid) in; d(x) out (the skip connection carries d(mid) through, the norm path adds to it).
    private func attentionBackward(layer l: Int, dx: FloatPtr, batch b: TokenBatch.Pointers) {
        let a = acts!, d = a.gradients!, w = layout.layers[l], s = a.layer(l), T = b.tokenCount
        let dOProj = throughOutputNorm(outputNorm(attention: true, layer: l), dx: dx, rows: T)
        linearBackward(w.o, dinp: d.dAtt, dout: dOProj, inp: s.att, rows: T, accumulate: false)
        d.dK.update(repeating: 0, count: T * config.kvDim)
        d.dV.update(repeating: 0, count: T * config.kvDim)
        DPOKernels.attentionBackward(dq: d.dQ, dk: d.dK, dv: d.dV, dout: d.dAtt, q: s.q, k: s.k, v: s.v, out: s.att,
                                     lse: s.lse, starts: b.starts, lengths: b.lengths, prefixStarts: b.prefixStarts,
                                     prefixLengths: b.prefixLengths, sequences: b.sequenceCount,
                                     shape: attentionShape(layer: l), scratch: a.attentionScratch, longest: a.longest,
                                     matmul: matmul)
        if config.spec.layerUsesRope[l] {
            rotate(d.dQ, heads: config.numHeads, layer: l, batch: b, inverse: true)
            rotate(d.dK, heads: config.numKVHeads, layer: l, batch: b, inverse: true)
        }
        var dq = d.dQ, dk = d.dK
        if let qNorm = w.qNorm, let kNorm = w.kNorm {
            // dAtt is free again: it takes d(q_proj's output).
            d.dAtt.update(repeating: 0, count: T * config.qDim)
            d.dKRaw.update(repeating: 0, count: T * config.kvDim)
            normBackward(qNorm, dinp: d.dAtt, dout: d.dQ, inp: s.qRaw, rstd: s.qRstd, rows: T * config.qDim / qNorm.channels)
            normBackward(kNorm, dinp: d.dKRaw, dout: d.dK, inp: s.kRaw, rstd: s.kRstd, rows: T * config.kvDim / kNorm.channels)
            dq = d.dAtt
            dk = d.dKRaw
        }
        let h = normsBefore ? s.norm1 : a.residual(l), dh = normsBefore ? d.dNorm : dx
        matmul.holdingOperands(h, nil) {  // the weight gradients of q, k and v all read h
            linearBackward(w.q, dinp: dh, dout: dq, inp: h, rows: T, accumulate: !normsBefore)
            linearBackward(w.k, dinp: dh, dout: dk, inp: h, rows: T, accumulate: true)
            linearBackward(w.v, dinp: dh, dout: d.dV, inp: h, rows: T, accumulate: true)
        }
        if normsBefore { normBackward(w.inputNorm, dinp: dx, dout: d.dNorm, inp: a.residual(l), rstd: s.rstd1, rows: T) }
    }

    // MARK: - MLP step: out = mid + down(silu(gate(h)) ⊙ up(h)), h = post_attention_layernorm(mid)
    // (with the norm after the sublayer: out = mid + norm(down(silu(gate(mid)) ⊙ up(mid))); around it,
    // Gemma 3: out = mid + post_feedforward_layernorm(down(gelu(gate(h)) ⊙ up(h))), h = pre_feedforward_layernorm(mid))

    private func mlpForward(layer l: Int, rows T: Int) {
        let a = acts!, w = layout.layers[l], s = a.layer(l), out = a.residual(l + 1)
        let h: FloatPtr
        if normsBefore {
            norm(w.postNorm, out: s.norm2, rstd: s.rstd2, inp: s.mid, rows: T)
            h = s.norm2
        } else {
            h = s.mid
        }
        matmul.holdingOperands(h, nil) {  // gate and up read the same h
            linear(w.gate, out: s.gate, inp: h, rows: T)
            linear(w.up, out: s.up, inp: h, rows: T)
        }
        switch config.spec.mlpActivation {
        case .silu: swigluForward(out: s.hidden, gate: s.gate, up: s.up, count: T * config.intermediateSize)
        case .geluTanh: gegluTanhForward(out: s.hidden, gate: s.gate, up: s.up, count: T * config.intermediateSize)
        }
        if let n = outputNorm(attention: false, layer: l) {
            linear(w.down, out: n.inp, inp: s.hidden, rows: T)
            norm(n.w, out: out, rstd: n.rstd, inp: n.inp, rows: T)
        } else {
            linear(w.down, out: out, inp: s.hidden, rows: T)
        }
        addInPlace(out, s.mid, count: T * config.hiddenSize)
    }

    /// dx: d(out) in; d(mid) out.
    private func mlpBackward(layer l: Int, dx: FloatPtr, rows T: Int) {
        let a = acts!, d = a.gradients!, w = layout.layers[l], s = a.layer(l)
        let dDown = throughOutputNorm(outputNorm(attention: false, layer: l), dx: dx, rows: T)
        linearBackward(w.down, dinp: d.dHidden, dout: dDown, inp: s.hidden, rows: T, accumulate: false)
        switch config.spec.mlpActivation {
        case .silu:
            swigluBackward(dgate: d.dGate, dup: d.dUp, dout: d.dHidden, gate: s.gate, up: s.up, count: T * config.intermediateSize)
        case .geluTanh:
            gegluTanhBackward(dgate: d.dGate, dup: d.dUp, dout: d.dHidden, gate: s.gate, up: s.up, count: T * config.intermediateSize)
        }
        let h = normsBefore ? s.norm2 : s.mid, dh = normsBefore ? d.dNorm : dx
        matmul.holdingOperands(h, nil) {  // the weight gradients of gate and up both read h
            linearBackward(w.gate, dinp: dh, dout: d.dGate, inp: h, rows: T, accumulate: !normsBefore)
            linearBackward(w.up, dinp: dh, dout: d.dUp, inp: h, rows: T, accumulate: true)
        }
        if normsBefore { normBackward(w.postNorm, dinp: dx, dout: d.dNorm, inp: s.mid, rstd: s.rstd2, rows: T) }
    }

    /// d(sublayer output) from d(after the residual add): dx itself, or with a norm on the sublayer's
    /// output (see `outputNorm`), dx through that norm, into the dNorm scratch.
    private func throughOutputNorm(_ n: (w: NormView, inp: FloatPtr, rstd: FloatPtr)?, dx: FloatPtr, rows T: Int) -> FloatPtr {
        guard let n else { return dx }
        let dNorm = acts!.gradients!.dNorm
        dNorm.update(repeating: 0, count: T * config.hiddenSize)
        normBackward(n.w, dinp: dNorm, dout: dx, inp: n.inp, rstd: n.rstd, rows: T)
        return dNorm
    }

    // MARK: - The parts, on this model's buffers and backend

    /// A linear's weight as fp32: in `parameters`, or a frozen one widened into the scratch (valid
    /// until the next call).
    private func weight(_ w: LinearView) -> ConstFloatPtr {
        guard let bits = frozenWeights?.bits(w) else { return ConstFloatPtr(parameters.values.pointer + w.weight) }
        if widened == nil { widened = FloatBuffer(count: frozenWeights!.largestView, zeroed: false) }
        widenBFloat16(bits, into: widened!.pointer, count: w.inFeatures * w.outFeatures)
        return ConstFloatPtr(widened!.pointer)
    }

    private func linear(_ w: LinearView, out: FloatPtr, inp: ConstFloatPtr, rows: Int) {
        let P = parameters.values.pointer
        matmulForward(out: out, inp: inp, weight: weight(w), bias: w.bias.map { P + $0 }, rows: rows,
                      inFeatures: w.inFeatures, outFeatures: w.outFeatures, matmul: matmul)
        adapters?.forward(w, out: out, inp: inp, rows: rows, matmul: matmul)
    }

    /// Without gradients (a frozen model) only dinp is computed.
    private func linearBackward(_ w: LinearView, dinp: FloatPtr, dout: ConstFloatPtr, inp: ConstFloatPtr, rows: Int,
                                accumulate: Bool) {
        let G = parameters.gradients?.pointer
        // dout feeds dX and dW (and an adapter's products), inp dW and the adapter's.
        matmul.holdingOperands(dout, inp) {
            matmulBackward(dinp: dinp, dweight: G.map { $0 + w.weight }, dbias: G.flatMap { g in w.bias.map { g + $0 } },
                           dout: dout, inp: inp, weight: weight(w), rows: rows,
                           inFeatures: w.inFeatures, outFeatures: w.outFeatures, accumulateInput: accumulate, matmul: matmul)
            adapters?.backward(w, dinp: dinp, dout: dout, inp: inp, rows: rows, matmul: matmul)
        }
    }

    private func norm(_ w: NormView, out: FloatPtr, rstd: FloatPtr, inp: ConstFloatPtr, rows: Int) {
        rmsnormForward(out: out, rstd: rstd, inp: inp, weight: parameters.values.pointer + w.weight, eps: config.rmsNormEps,
                       rows: rows, channels: w.channels, weightOffset: config.spec.normWeightOffset)
    }

    private func normBackward(_ w: NormView, dinp: FloatPtr, dout: ConstFloatPtr, inp: ConstFloatPtr, rstd: ConstFloatPtr,
                              rows: Int) {
        rmsnormBackward(dinp: dinp, dweight: parameters.gradients.map { $0.pointer + w.weight }, dout: dout, inp: inp,
                        weight: parameters.values.pointer + w.weight, rstd: rstd, rows: rows, channels: w.channels,
                        weightOffset: config.spec.normWeightOffset)
    }

    private func rotate(_ x: FloatPtr, heads: Int, layer l: Int, batch b: TokenBatch.Pointers, inverse: Bool) {
        let table = config.spec.layerWindows[l] != nil ? slidingRope ?? rope : rope
        table.cos.withUnsafeBufferPointer { cos in
            table.sin.withUnsafeBufferPointer { sin in
                ropeApply(x, positions: b.positions, cos: cos.baseAddress!, sin: sin.baseAddress!, rows: b.tokenCount,
                          heads: heads, headDim: config.headDim, rotaryDim: config.rotaryDim, inverse: inverse)
            }
        }
    }

    private func attentionShape(layer l: Int) -> AttentionShape {
        AttentionShape(heads: config.numHeads, kvHeads: config.numKVHeads, headDim: config.headDim, blockRows: attentionBlockRows,
                       window: config.spec.layerWindows[l], scale: config.spec.attentionScalar.map { Float(pow($0, -0.5)) })
    }

    // MARK: - Logits for eval and generation

    /// Logits of scored rows [first, first + count) of the last `forward`, into `out` (count × vocab):
    /// a chunk at a time, for eval (KL against the reference) and generation.
    public func scoredRowLogits(first: Int, count: Int, into out: FloatPtr) {
        precondition(first >= 0 && first + count <= lastScored)
        let C = config.hiddenSize
        headLogits(out: out, hidden: acts!.output.headIn + first * C, weight: parameters.values.pointer + layout.head,
                   rows: count, channels: C, vocab: config.vocabSize, matmul: matmul)
    }

    /// Full logits (tokens × vocab) for every position: for tests and generation, not training.
    public func logits(_ batch: TokenBatch) -> [Float] {
        runDecoder(batch)
        let C = config.hiddenSize, T = batch.tokenCount
        var out = [Float](repeating: 0, count: T * config.vocabSize)
        out.withUnsafeMutableBufferPointer { o in
            headLogits(out: o.baseAddress!, hidden: acts!.output.finalNormOut, weight: parameters.values.pointer + layout.head,
                       rows: T, channels: C, vocab: config.vocabSize, matmul: matmul)
        }
        return out
    }
}
