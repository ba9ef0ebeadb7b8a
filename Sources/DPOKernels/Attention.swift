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
/// sequence that starts at token `start`. They attend to the sequence's prefix (rows
/// `prefixStart..<prefixStart + prefix`, none when `prefix` is 0) and to its own keys
/// `0..<firstRow + rows`; the score block's columns are the prefix keys, then the own keys:
/// `keys` = prefix + firstRow + rows columns in all, its row stride.
struct AttentionBlock {
    let start: Int, head: Int, firstRow: Int, rows: Int, keys: Int
    let prefixStart: Int, prefix: Int
    /// Own keys (columns `prefix..<keys`).
    var ownKeys: Int { keys - prefix }
    /// Columns row i of the block may attend to: the prefix and its own keys up to itself.
    func valid(_ i: Int) -> Int { prefix + firstRow + i + 1 }
}

/// Rows of a score block one thread takes at least when the softmax rows are split over threads.
private let softmaxRowsPerThread = 32

/// Calls `body` for every block of every head of every sequence, with the block's scores
/// S = scale · q kᵀ (rows × keys, causal mask not yet applied) computed into `scores`: one product
/// against the prefix keys (when there is a prefix) and one against the sequence's own.
@inline(__always)
private func forEachBlock(q: ConstFloatPtr, k: ConstFloatPtr, starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                          prefixStarts: UnsafePointer<Int>?, prefixLengths: UnsafePointer<Int>?,
                          sequences: Int, shape: AttentionShape, scores: FloatPtr, matmul: any MatmulBackend,
                          _ body: (AttentionBlock) -> Void) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    for s in 0..<sequences {
        let s0 = starts[s], L = lengths[s]
        let pre = prefixLengths?[s] ?? 0, p0 = pre > 0 ? prefixStarts![s] : s0
        for h in 0..<shape.heads {
            let kvHead = (h / shape.group) * D
            let qh = q + s0 * qs + h * D, kh = k + s0 * kvs + kvHead, kp = k + p0 * kvs + kvHead
            var r0 = 0
            while r0 < L {
                let nb = min(shape.blockRows, L - r0), nk = pre + r0 + nb
                if pre > 0 {
                    matmul.gemm(transA: false, transB: true, m: nb, n: pre, k: D, alpha: shape.scale,
                                a: qh + r0 * qs, lda: qs, b: kp, ldb: kvs, beta: 0, c: scores, ldc: nk)
                }
                matmul.gemm(transA: false, transB: true, m: nb, n: r0 + nb, k: D, alpha: shape.scale,
                            a: qh + r0 * qs, lda: qs, b: kh, ldb: kvs, beta: 0, c: scores + pre, ldc: nk)
                body(AttentionBlock(start: s0, head: h, firstRow: r0, rows: nb, keys: nk, prefixStart: p0, prefix: pre))
                r0 += nb
            }
        }
    }
}

/// out (T, H·D) = softmax(q kᵀ · scale, causal within each sequence) v, for each sequence of the
/// packed batch (`starts`, `lengths`); a sequence with a prefix (`prefixStarts`, `prefixLengths`,
/// length 0 for none; nil: no sequence has one) attends to all of its prefix rows first. Saves the
/// row log-sum-exp `lse` (T, H) so that backward recomputes the probabilities instead of storing T²
/// of them. `scratch` holds blockRows × (longest prefix + own length).
public func attentionForward(out: FloatPtr, lse: FloatPtr, q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr,
                             starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                             prefixStarts: UnsafePointer<Int>? = nil, prefixLengths: UnsafePointer<Int>? = nil,
                             sequences: Int, shape: AttentionShape, scratch: FloatPtr, matmul: any MatmulBackend) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    forEachBlock(q: q, k: k, starts: starts, lengths: lengths, prefixStarts: prefixStarts, prefixLengths: prefixLengths,
                 sequences: sequences, shape: shape, scores: scratch, matmul: matmul) { b in
        let kvHead = (b.head / shape.group) * D
        let vh = v + b.start * kvs + kvHead, vp = v + b.prefixStart * kvs + kvHead
        forEachPiece(of: b.rows, minimum: softmaxRowsPerThread, alignment: 1) { piece in
            for i in piece {
                let row = scratch + i * b.keys, valid = b.valid(i)
                let m = maxOf(row, valid)
                expInPlace(row, valid, shift: m)
                let sum = sumOf(row, valid)
                scaleInPlace(row, valid, 1 / sum)
                (row + valid).update(repeating: 0, count: b.keys - valid)
                lse[(b.start + b.firstRow + i) * shape.heads + b.head] = m + logf(sum)
            }
        }
        let o = out + (b.start + b.firstRow) * qs + b.head * D
        if b.prefix > 0 {
            matmul.gemm(transA: false, transB: false, m: b.rows, n: D, k: b.prefix, a: scratch, lda: b.keys, b: vp, ldb: kvs,
                        beta: 0, c: o, ldc: qs)
        }
        matmul.gemm(transA: false, transB: false, m: b.rows, n: D, k: b.ownKeys, a: scratch + b.prefix, lda: b.keys, b: vh,
                    ldb: kvs, beta: b.prefix > 0 ? 1 : 0, c: o, ldc: qs)
    }
}

/// Backward of `attentionForward`. Overwrites dq; ACCUMULATES into dk and dv (several query heads
/// share one key/value head, and a prefix's rows are attended by their own sequence and by the
/// sequences that share them), which the caller zeroes first. `scratch` holds 2 × blockRows × longest
/// (longest prefix + own length).
public func attentionBackward(dq: FloatPtr, dk: FloatPtr, dv: FloatPtr, dout: ConstFloatPtr,
                              q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr, out: ConstFloatPtr,
                              lse: ConstFloatPtr, starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                              prefixStarts: UnsafePointer<Int>? = nil, prefixLengths: UnsafePointer<Int>? = nil,
                              sequences: Int, shape: AttentionShape, scratch: FloatPtr, longest: Int,
                              matmul: any MatmulBackend) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    let P = scratch, dP = scratch + shape.blockRows * longest
    forEachBlock(q: q, k: k, starts: starts, lengths: lengths, prefixStarts: prefixStarts, prefixLengths: prefixLengths,
                 sequences: sequences, shape: shape, scores: P, matmul: matmul) { b in
        let nb = b.rows, nk = b.keys, pre = b.prefix, own = b.ownKeys, r0 = b.firstRow
        let kvHead = (b.head / shape.group) * D
        let kv = b.start * kvs + kvHead, kvp = b.prefixStart * kvs + kvHead, rows = (b.start + r0) * qs + b.head * D
        // P = exp(scale · q kᵀ − lse), zero above the diagonal.
        forEachPiece(of: nb, minimum: softmaxRowsPerThread, alignment: 1) { piece in
            for i in piece {
                let row = P + i * nk, valid = b.valid(i)
                expInPlace(row, valid, shift: lse[(b.start + r0 + i) * shape.heads + b.head])
                (row + valid).update(repeating: 0, count: nk - valid)
            }
        }
        // dv += Pᵀ dO (own keys, then prefix keys)
        matmul.gemm(transA: true, transB: false, m: own, n: D, k: nb, a: P + pre, lda: nk, b: dout + rows, ldb: qs,
                    beta: 1, c: dv + kv, ldc: kvs)
        if pre > 0 {
            matmul.gemm(transA: true, transB: false, m: pre, n: D, k: nb, a: P, lda: nk, b: dout + rows, ldb: qs,
                        beta: 1, c: dv + kvp, ldc: kvs)
        }
        // dP = dO vᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale
        if pre > 0 {
            matmul.gemm(transA: false, transB: true, m: nb, n: pre, k: D, a: dout + rows, lda: qs, b: v + kvp, ldb: kvs,
                        beta: 0, c: dP, ldc: nk)
        }
        matmul.gemm(transA: false, transB: true, m: nb, n: own, k: D, a: dout + rows, lda: qs, b: v + kv, ldb: kvs,
                    beta: 0, c: dP + pre, ldc: nk)
        forEachPiece(of: nb, minimum: softmaxRowsPerThread, alignment: 1) { piece in
            for i in piece {
                let dOi = dout + rows + i * qs, Oi = out + rows + i * qs
                var delta: Float = 0
                for d in 0..<D { delta += dOi[d] * Oi[d] }
                let prow = P + i * nk, drow = dP + i * nk, valid = b.valid(i)
                for j in 0..<valid { drow[j] = prow[j] * (drow[j] - delta) * shape.scale }
                for j in valid..<nk { drow[j] = 0 }
            }
        }
        // dq = dS k;  dk += dSᵀ q
        if pre > 0 {
            matmul.gemm(transA: false, transB: false, m: nb, n: D, k: pre, a: dP, lda: nk, b: k + kvp, ldb: kvs,
                        beta: 0, c: dq + rows, ldc: qs)
        }
        matmul.gemm(transA: false, transB: false, m: nb, n: D, k: own, a: dP + pre, lda: nk, b: k + kv, ldb: kvs,
                    beta: pre > 0 ? 1 : 0, c: dq + rows, ldc: qs)
        matmul.gemm(transA: true, transB: false, m: own, n: D, k: nb, a: dP + pre, lda: nk, b: q + rows, ldb: qs,
                    beta: 1, c: dk + kv, ldc: kvs)
        if pre > 0 {
            matmul.gemm(transA: true, transB: false, m: pre, n: D, k: nb, a: dP, lda: nk, b: q + rows, ldb: qs,
                        beta: 1, c: dk + kvp, ldc: kvs)
        }
    }
}
