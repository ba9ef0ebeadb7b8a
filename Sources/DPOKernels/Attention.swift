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

/// One block of query rows of one head of one sequence: the rows `firstRow..<firstRow + rows` of the
/// sequence that starts at token `start`, which attend to its keys `0..<keys` (keys = firstRow + rows).
struct AttentionBlock {
    let start: Int, head: Int, firstRow: Int, rows: Int, keys: Int
}

/// Calls `body` for every block of every head of every sequence, with the block's scores
/// S = scale · q kᵀ (rows × keys, causal mask not yet applied) computed into `scores`.
@inline(__always)
private func forEachBlock(q: ConstFloatPtr, k: ConstFloatPtr, starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                          sequences: Int, shape: AttentionShape, scores: FloatPtr, matmul: any MatmulBackend,
                          _ body: (AttentionBlock) -> Void) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    for s in 0..<sequences {
        let s0 = starts[s], L = lengths[s]
        for h in 0..<shape.heads {
            let qh = q + s0 * qs + h * D, kh = k + s0 * kvs + (h / shape.group) * D
            var r0 = 0
            while r0 < L {
                let nb = min(shape.blockRows, L - r0), nk = r0 + nb
                matmul.gemm(transA: false, transB: true, m: nb, n: nk, k: D, alpha: shape.scale,
                            a: qh + r0 * qs, lda: qs, b: kh, ldb: kvs, beta: 0, c: scores, ldc: nk)
                body(AttentionBlock(start: s0, head: h, firstRow: r0, rows: nb, keys: nk))
                r0 += nb
            }
        }
    }
}

/// out (T, H·D) = softmax(q kᵀ · scale, causal within each sequence) v, for each sequence of the
/// packed batch (`starts`, `lengths`). Saves the row log-sum-exp `lse` (T, H) so that backward
/// recomputes the probabilities instead of storing T² of them. `scratch` holds blockRows × (longest sequence).
public func attentionForward(out: FloatPtr, lse: FloatPtr, q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr,
                             starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>, sequences: Int,
                             shape: AttentionShape, scratch: FloatPtr, matmul: any MatmulBackend) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    forEachBlock(q: q, k: k, starts: starts, lengths: lengths, sequences: sequences, shape: shape, scores: scratch,
                 matmul: matmul) { b in
        let vh = v + b.start * kvs + (b.head / shape.group) * D
        for i in 0..<b.rows {
            let row = scratch + i * b.keys, valid = b.firstRow + i + 1
            let m = maxOf(row, valid)
            expInPlace(row, valid, shift: m)
            let sum = sumOf(row, valid)
            scaleInPlace(row, valid, 1 / sum)
            (row + valid).update(repeating: 0, count: b.keys - valid)
            lse[(b.start + b.firstRow + i) * shape.heads + b.head] = m + logf(sum)
        }
        matmul.gemm(transA: false, transB: false, m: b.rows, n: D, k: b.keys, a: scratch, lda: b.keys, b: vh, ldb: kvs,
                    beta: 0, c: out + (b.start + b.firstRow) * qs + b.head * D, ldc: qs)
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
    forEachBlock(q: q, k: k, starts: starts, lengths: lengths, sequences: sequences, shape: shape, scores: P,
                 matmul: matmul) { b in
        let nb = b.rows, nk = b.keys, r0 = b.firstRow
        let kv = b.start * kvs + (b.head / shape.group) * D, rows = (b.start + r0) * qs + b.head * D
        // P = exp(scale · q kᵀ − lse), zero above the diagonal.
        for i in 0..<nb {
            let row = P + i * nk, valid = r0 + i + 1
            expInPlace(row, valid, shift: lse[(b.start + r0 + i) * shape.heads + b.head])
            (row + valid).update(repeating: 0, count: nk - valid)
        }
        // dv += Pᵀ dO
        matmul.gemm(transA: true, transB: false, m: nk, n: D, k: nb, a: P, lda: nk, b: dout + rows, ldb: qs,
                    beta: 1, c: dv + kv, ldc: kvs)
        // dP = dO vᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale
        matmul.gemm(transA: false, transB: true, m: nb, n: nk, k: D, a: dout + rows, lda: qs, b: v + kv, ldb: kvs,
                    beta: 0, c: dP, ldc: nk)
        for i in 0..<nb {
            let dOi = dout + rows + i * qs, Oi = out + rows + i * qs
            var delta: Float = 0
            for d in 0..<D { delta += dOi[d] * Oi[d] }
            let prow = P + i * nk, drow = dP + i * nk
            for j in 0..<(r0 + i + 1) { drow[j] = prow[j] * (drow[j] - delta) * shape.scale }
            for j in (r0 + i + 1)..<nk { drow[j] = 0 }
        }
        // dq = dS k;  dk += dSᵀ q
        matmul.gemm(transA: false, transB: false, m: nb, n: D, k: nk, a: dP, lda: nk, b: k + kv, ldb: kvs,
                    beta: 0, c: dq + rows, ldc: qs)
        matmul.gemm(transA: true, transB: false, m: nk, n: D, k: nb, a: dP, lda: nk, b: q + rows, ldb: qs,
                    beta: 1, c: dk + kv, ldc: kvs)
    }
}
