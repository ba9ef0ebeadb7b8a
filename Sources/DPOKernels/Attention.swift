import Foundation

// Causal grouped-query attention over packed sequences.

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
                             shape: AttentionShape, scratch: FloatPtr, matmul: any MatmulBackend) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    for s in 0..<sequences {
        let s0 = starts[s], L = lengths[s]
        for h in 0..<shape.heads {
            let kvh = h / shape.group
            let qh = q + s0 * qs + h * D, kh = k + s0 * kvs + kvh * D, vh = v + s0 * kvs + kvh * D
            var r0 = 0
            while r0 < L {
                let nb = min(shape.blockRows, L - r0), nk = r0 + nb
                matmul.gemm(transA: false, transB: true, m: nb, n: nk, k: D, alpha: shape.scale,
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
                matmul.gemm(transA: false, transB: false, m: nb, n: D, k: nk, a: scratch, lda: nk, b: vh, ldb: kvs,
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
                              sequences: Int, shape: AttentionShape, scratch: FloatPtr, longest: Int,
                              matmul: any MatmulBackend) {
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
                matmul.gemm(transA: false, transB: true, m: nb, n: nk, k: D, alpha: shape.scale,
                     a: qh + r0 * qs, lda: qs, b: kh, ldb: kvs, beta: 0, c: P, ldc: nk)
                for i in 0..<nb {
                    let row = P + i * nk, valid = r0 + i + 1
                    let l = lse[(s0 + r0 + i) * shape.heads + h]
                    expInPlace(row, valid, shift: l)
                    (row + valid).update(repeating: 0, count: nk - valid)
                }
                // dv += Pᵀ dO
                matmul.gemm(transA: true, transB: false, m: nk, n: D, k: nb, a: P, lda: nk, b: doh + r0 * qs, ldb: qs,
                     beta: 1, c: dvh, ldc: kvs)
                // dP = dO vᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale
                matmul.gemm(transA: false, transB: true, m: nb, n: nk, k: D, a: doh + r0 * qs, lda: qs, b: vh, ldb: kvs,
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
                matmul.gemm(transA: false, transB: false, m: nb, n: D, k: nk, a: dP, lda: nk, b: kh, ldb: kvs,
                     beta: 0, c: dqh + r0 * qs, ldc: qs)
                matmul.gemm(transA: true, transB: false, m: nk, n: D, k: nb, a: dP, lda: nk, b: qh + r0 * qs, ldb: qs,
                     beta: 1, c: dkh, ldc: kvs)
                r0 += nb
            }
        }
    }
}
