import COpenBLAS
import Foundation

// The model's kernels. Each is a plain function: outputs first, inputs next, sizes last. Every
// `...Backward` is the mirror of its forward and ACCUMULATES into the gradients it is given (`+=`),
// so gradient accumulation over micro-batches needs no extra pass. All matrices are row-major.
// Weights are stored as torch's nn.Linear stores them: (out features, in features).

public typealias FloatPtr = UnsafeMutablePointer<Float>
public typealias ConstFloatPtr = UnsafePointer<Float>

/// The one matrix-product entry point: C = alpha · op(A) · op(B) + beta · C.
/// Every product in the model goes through here, so another backend is one switch.
@inline(__always)
public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: ConstFloatPtr, lda: Int, b: ConstFloatPtr, ldb: Int, beta: Float, c: FloatPtr, ldc: Int) {
    if m == 0 || n == 0 { return }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Sets the number of OpenBLAS threads for this process.
public func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

// MARK: - Linear

/// out (rows, outF) = inp (rows, inF) · weightᵀ + bias.
public func matmulForward(out: FloatPtr, inp: ConstFloatPtr, weight: ConstFloatPtr, bias: ConstFloatPtr?,
                          rows: Int, inFeatures: Int, outFeatures: Int) {
    gemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
         a: inp, lda: inFeatures, b: weight, ldb: inFeatures, beta: 0, c: out, ldc: outFeatures)
    if let bias {
        for r in 0..<rows {
            let row = out + r * outFeatures
            for j in 0..<outFeatures { row[j] += bias[j] }
        }
    }
}

/// dinp (+)= dout · weight; dweight += doutᵀ · inp; dbias += Σ_rows dout.
/// `accumulateInput: false` overwrites dinp (the first of several products that feed one input).
public func matmulBackward(dinp: FloatPtr?, dweight: FloatPtr, dbias: FloatPtr?,
                           dout: ConstFloatPtr, inp: ConstFloatPtr, weight: ConstFloatPtr,
                           rows: Int, inFeatures: Int, outFeatures: Int, accumulateInput: Bool) {
    if let dinp {
        gemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures,
             a: dout, lda: outFeatures, b: weight, ldb: inFeatures, beta: accumulateInput ? 1 : 0,
             c: dinp, ldc: inFeatures)
    }
    gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows,
         a: dout, lda: outFeatures, b: inp, ldb: inFeatures, beta: 1, c: dweight, ldc: inFeatures)
    if let dbias {
        for r in 0..<rows {
            let row = dout + r * outFeatures
            for j in 0..<outFeatures { dbias[j] += row[j] }
        }
    }
}

// MARK: - Embedding

public func embeddingForward(out: FloatPtr, tokens: UnsafePointer<Int32>, table: ConstFloatPtr, rows: Int, channels: Int) {
    for t in 0..<rows {
        (out + t * channels).update(from: table + Int(tokens[t]) * channels, count: channels)
    }
}

/// `skipToken` (the padding index) receives no gradient, as torch's nn.Embedding(padding_idx:).
public func embeddingBackward(dtable: FloatPtr, dout: ConstFloatPtr, tokens: UnsafePointer<Int32>, rows: Int, channels: Int,
                              skipToken: Int? = nil) {
    let skip = Int32(skipToken ?? -1)
    for t in 0..<rows where tokens[t] != skip {
        let d = dtable + Int(tokens[t]) * channels, g = dout + t * channels
        for c in 0..<channels { d[c] += g[c] }
    }
}

// MARK: - RMSNorm (Hugging Face: weight · x / sqrt(mean(x²) + eps), in fp32)

public func rmsnormForward(out: FloatPtr, rstd: FloatPtr, inp: ConstFloatPtr, weight: ConstFloatPtr,
                           eps: Float, rows: Int, channels: Int) {
    for t in 0..<rows {
        let x = inp + t * channels, y = out + t * channels
        var sumSquares: Float = 0
        for c in 0..<channels { sumSquares += x[c] * x[c] }
        let r = 1 / (sumSquares / Float(channels) + eps).squareRoot()
        rstd[t] = r
        for c in 0..<channels { y[c] = weight[c] * (x[c] * r) }
    }
}

/// y = w ⊙ x · r, r = (mean x² + eps)^(-1/2):
/// dx = r · (w ⊙ dy) − r³/C · x · Σ(w ⊙ dy ⊙ x);  dw += dy ⊙ x · r.
public func rmsnormBackward(dinp: FloatPtr, dweight: FloatPtr, dout: ConstFloatPtr, inp: ConstFloatPtr,
                            weight: ConstFloatPtr, rstd: ConstFloatPtr, rows: Int, channels: Int) {
    for t in 0..<rows {
        let x = inp + t * channels, dy = dout + t * channels, dx = dinp + t * channels
        let r = rstd[t]
        var dot: Float = 0
        for c in 0..<channels { dot += weight[c] * dy[c] * x[c] }
        let k = r * r * r * dot / Float(channels)
        for c in 0..<channels {
            dx[c] += r * weight[c] * dy[c] - k * x[c]
            dweight[c] += dy[c] * x[c] * r
        }
    }
}

// MARK: - RoPE (Hugging Face rotate-half: pairs (i, i + D/2) share frequency i)

/// cos/sin tables (positions, D/2), computed as transformers does: inverse frequencies and the
/// angle position × inv_freq rounded to fp32, so positions far out agree with it too.
public struct RopeTable {
    public let halfDim: Int
    public let positions: Int
    public let cos: [Float]
    public let sin: [Float]

    public init(headDim: Int, theta: Double, scaling: RopeScaling, positions: Int) {
        let half = headDim / 2
        var invFreq = (0..<half).map { i -> Float in
            1 / Float(pow(Float(theta), Float(2 * i) / Float(headDim)))
        }
        switch scaling {
        case .none: break
        case let .linear(factor):
            invFreq = invFreq.map { $0 / Float(factor) }
        case let .llama3(factor, lowFactor, highFactor, original):
            let f = Float(factor), lo = Float(lowFactor), hi = Float(highFactor), old = Float(original)
            let lowWavelen = old / lo, highWavelen = old / hi
            invFreq = invFreq.map { freq in
                let wavelen = 2 * Float.pi / freq
                if wavelen < highWavelen { return freq }
                if wavelen > lowWavelen { return freq / f }
                let smooth = (old / wavelen - lo) / (hi - lo)
                return (1 - smooth) * freq / f + smooth * freq
            }
        }
        var cosTable = [Float](repeating: 0, count: positions * half)
        var sinTable = cosTable
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                cosTable[p * half + i] = Float(Foundation.cos(Double(angle)))
                sinTable[p * half + i] = Float(Foundation.sin(Double(angle)))
            }
        }
        halfDim = half
        self.positions = positions
        cos = cosTable
        sin = sinTable
    }
}

/// Rotates every head of x (rows, heads·D) in place by its token's position.
/// `inverse` applies the transpose rotation: the backward pass of the forward rotation.
public func ropeApply(_ x: FloatPtr, positions: UnsafePointer<Int32>, cos: ConstFloatPtr, sin: ConstFloatPtr,
                      rows: Int, heads: Int, headDim: Int, inverse: Bool) {
    let half = headDim / 2
    let sign: Float = inverse ? -1 : 1
    for t in 0..<rows {
        let c = cos + Int(positions[t]) * half, s = sin + Int(positions[t]) * half
        for h in 0..<heads {
            let v = x + t * heads * headDim + h * headDim
            for i in 0..<half {
                let a = v[i], b = v[i + half], si = sign * s[i]
                v[i] = a * c[i] - b * si
                v[i + half] = b * c[i] + a * si
            }
        }
    }
}

// MARK: - SwiGLU MLP activation: h = silu(gate) ⊙ up

public func swigluForward(out: FloatPtr, gate: ConstFloatPtr, up: ConstFloatPtr, count: Int) {
    for i in 0..<count {
        let g = gate[i]
        out[i] = g / (1 + fastExp(-g)) * up[i]
    }
}

/// dgate = dh · up · σ(g)(1 + g(1 − σ(g))); dup = dh · silu(g). Overwrites dgate and dup.
public func swigluBackward(dgate: FloatPtr, dup: FloatPtr, dout: ConstFloatPtr, gate: ConstFloatPtr,
                           up: ConstFloatPtr, count: Int) {
    for i in 0..<count {
        let g = gate[i]
        let sig = 1 / (1 + fastExp(-g))
        dgate[i] = dout[i] * up[i] * sig * (1 + g * (1 - sig))
        dup[i] = dout[i] * g * sig
    }
}

// MARK: - Causal grouped-query attention over packed sequences

/// Attention sizes and the block of query rows processed at once.
public struct AttentionShape {
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Query rows per block: a block attends to keys 0..<(end of block), so the masked work
    /// wasted above the diagonal is at most one block per row range.
    public let blockRows: Int
    public var qStride: Int { heads * headDim }
    public var kvStride: Int { kvHeads * headDim }
    public var group: Int { heads / kvHeads }
    public var scale: Float { 1 / Float(headDim).squareRoot() }

    public init(heads: Int, kvHeads: Int, headDim: Int, blockRows: Int = 128) {
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim; self.blockRows = blockRows
    }
}

/// out (T, H·D) = softmax(q kᵀ · scale, causal within each sequence) v, for each sequence of the
/// packed batch (`starts`, `lengths`). Saves the row log-sum-exp `lse` (T, H) so that backward
/// recomputes the probabilities instead of storing T² of them. `scratch` holds blockRows × (longest sequence).
public func attentionForward(out: FloatPtr, lse: FloatPtr, q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr,
                             starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>, sequences: Int,
                             shape: AttentionShape, scratch: FloatPtr) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    for s in 0..<sequences {
        let s0 = starts[s], L = lengths[s]
        for h in 0..<shape.heads {
            let kvh = h / shape.group
            let qh = q + s0 * qs + h * D, kh = k + s0 * kvs + kvh * D, vh = v + s0 * kvs + kvh * D
            var r0 = 0
            while r0 < L {
                let nb = min(shape.blockRows, L - r0), nk = r0 + nb
                gemm(transA: false, transB: true, m: nb, n: nk, k: D, alpha: shape.scale,
                     a: qh + r0 * qs, lda: qs, b: kh, ldb: kvs, beta: 0, c: scratch, ldc: nk)
                for i in 0..<nb {
                    let row = scratch + i * nk, valid = r0 + i + 1
                    let m = maxOf(row, valid)
                    expInPlace(row, valid, shift: m)
                    let sum = sumOf(row, valid)
                    scaleInPlace(row, valid, 1 / sum)
                    (row + valid).update(repeating: 0, count: nk - valid)
                    lse[(s0 + r0 + i) * shape.heads + h] = m + logf(sum)
                }
                gemm(transA: false, transB: false, m: nb, n: D, k: nk, a: scratch, lda: nk, b: vh, ldb: kvs,
                     beta: 0, c: out + (s0 + r0) * qs + h * D, ldc: qs)
                r0 += nb
            }
        }
    }
}

/// Backward of `attentionForward`. Overwrites dq; ACCUMULATES into dk and dv (several query heads
/// share one key/value head), which the caller zeroes first. `scratch` holds 2 × blockRows × longest.
public func attentionBackward(dq: FloatPtr, dk: FloatPtr, dv: FloatPtr, dout: ConstFloatPtr,
                              q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr, out: ConstFloatPtr,
                              lse: ConstFloatPtr, starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                              sequences: Int, shape: AttentionShape, scratch: FloatPtr, longest: Int) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    let P = scratch, dP = scratch + shape.blockRows * longest
    for s in 0..<sequences {
        let s0 = starts[s], L = lengths[s]
        for h in 0..<shape.heads {
            let kvh = h / shape.group
            let qh = q + s0 * qs + h * D, kh = k + s0 * kvs + kvh * D, vh = v + s0 * kvs + kvh * D
            let doh = dout + s0 * qs + h * D, oh = out + s0 * qs + h * D
            let dqh = dq + s0 * qs + h * D, dkh = dk + s0 * kvs + kvh * D, dvh = dv + s0 * kvs + kvh * D
            var r0 = 0
            while r0 < L {
                let nb = min(shape.blockRows, L - r0), nk = r0 + nb
                // P = exp(scale · q kᵀ − lse), zero above the diagonal.
                gemm(transA: false, transB: true, m: nb, n: nk, k: D, alpha: shape.scale,
                     a: qh + r0 * qs, lda: qs, b: kh, ldb: kvs, beta: 0, c: P, ldc: nk)
                for i in 0..<nb {
                    let row = P + i * nk, valid = r0 + i + 1
                    let l = lse[(s0 + r0 + i) * shape.heads + h]
                    expInPlace(row, valid, shift: l)
                    (row + valid).update(repeating: 0, count: nk - valid)
                }
                // dv += Pᵀ dO
                gemm(transA: true, transB: false, m: nk, n: D, k: nb, a: P, lda: nk, b: doh + r0 * qs, ldb: qs,
                     beta: 1, c: dvh, ldc: kvs)
                // dP = dO vᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale
                gemm(transA: false, transB: true, m: nb, n: nk, k: D, a: doh + r0 * qs, lda: qs, b: vh, ldb: kvs,
                     beta: 0, c: dP, ldc: nk)
                for i in 0..<nb {
                    let dOi = doh + (r0 + i) * qs, Oi = oh + (r0 + i) * qs
                    var delta: Float = 0
                    for d in 0..<D { delta += dOi[d] * Oi[d] }
                    let prow = P + i * nk, drow = dP + i * nk
                    for j in 0..<(r0 + i + 1) { drow[j] = prow[j] * (drow[j] - delta) * shape.scale }
                    for j in (r0 + i + 1)..<nk { drow[j] = 0 }
                }
                // dq = dS k;  dk += dSᵀ q
                gemm(transA: false, transB: false, m: nb, n: D, k: nk, a: dP, lda: nk, b: kh, ldb: kvs,
                     beta: 0, c: dqh + r0 * qs, ldc: qs)
                gemm(transA: true, transB: false, m: nk, n: D, k: nb, a: dP, lda: nk, b: qh + r0 * qs, ldb: qs,
                     beta: 1, c: dkh, ldc: kvs)
                r0 += nb
            }
        }
    }
}

// MARK: - LM head and per-token log-probabilities, a chunk of rows at a time

/// For each of `rows` hidden states (rows, C): logp[i] = log softmax(h_i · Wᵀ)[target_i], plus the
/// row's log-sum-exp (kept for backward) and the sum of its logits (for the `logits/*` metrics).
/// Only `chunk` × V logits exist at any time; a full rows × V matrix is never held.
public func logProbForward(logp: FloatPtr, lse: FloatPtr, logitSum: FloatPtr, hidden: ConstFloatPtr,
                           weight: ConstFloatPtr, targets: UnsafePointer<Int32>, rows: Int, channels: Int,
                           vocab: Int, chunk: Int, scratch: FloatPtr) {
    var r0 = 0
    while r0 < rows {
        let n = min(chunk, rows - r0)
        gemm(transA: false, transB: true, m: n, n: vocab, k: channels, a: hidden + r0 * channels, lda: channels,
             b: weight, ldb: channels, beta: 0, c: scratch, ldc: vocab)
        for i in 0..<n {
            let row = scratch + i * vocab
            let m = maxOf(row, vocab)
            logitSum[r0 + i] = sumOf(row, vocab)
            let targetLogit = row[Int(targets[r0 + i])]
            expInPlace(row, vocab, shift: m)  // the chunk's logits are not needed after this row
            let l = m + logf(sumOf(row, vocab))
            lse[r0 + i] = l
            logp[r0 + i] = targetLogit - l
        }
        r0 += n
    }
}

/// Backward of `logProbForward` given dL/dlogp per row: dlogits = dlogp · (onehot(target) − softmax).
/// Recomputes each chunk's logits. Overwrites dhidden; accumulates into dweight.
public func logProbBackward(dhidden: FloatPtr, dweight: FloatPtr, dlogp: ConstFloatPtr, hidden: ConstFloatPtr,
                            weight: ConstFloatPtr, lse: ConstFloatPtr, targets: UnsafePointer<Int32>,
                            rows: Int, channels: Int, vocab: Int, chunk: Int, scratch: FloatPtr) {
    var r0 = 0
    while r0 < rows {
        let n = min(chunk, rows - r0)
        gemm(transA: false, transB: true, m: n, n: vocab, k: channels, a: hidden + r0 * channels, lda: channels,
             b: weight, ldb: channels, beta: 0, c: scratch, ldc: vocab)
        for i in 0..<n {
            let row = scratch + i * vocab, g = dlogp[r0 + i], l = lse[r0 + i]
            expInPlace(row, vocab, shift: l, scale: -g)
            row[Int(targets[r0 + i])] += g
        }
        gemm(transA: false, transB: false, m: n, n: channels, k: vocab, a: scratch, lda: vocab, b: weight,
             ldb: channels, beta: 0, c: dhidden + r0 * channels, ldc: channels)
        gemm(transA: true, transB: false, m: vocab, n: channels, k: n, a: scratch, lda: vocab,
             b: hidden + r0 * channels, ldb: channels, beta: 1, c: dweight, ldc: channels)
        r0 += n
    }
}
