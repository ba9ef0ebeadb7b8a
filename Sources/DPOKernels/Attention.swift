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
    /// Sliding-window attention (Mistral's `sliding_window`): a query at position p attends to the
    /// keys at positions p − window + 1 ... p, as transformers' mask `kv_idx > q_idx − window`; nil
    /// attends to every earlier key. Key blocks wholly outside the window are never computed.
    public let window: Int?
    public var qStride: Int { heads * headDim }
    public var kvStride: Int { kvHeads * headDim }
    public var group: Int { heads / kvHeads }
    /// Floats of scratch `attentionForward` and `attentionBackward` need when a row sees at most
    /// `longest` keys: scores, and in backward their gradients, for every head of one block.
    public func scratchCount(longest: Int) -> Int { 2 * heads * blockRows * max(longest, 1) }
    /// The products of one block, all heads at once: the query heads of a key/value head form a
    /// group, whose items share that head's keys and values.
    var headBatch: GemmBatch { GemmBatch(groups: kvHeads, perGroup: group) }
    /// A query-side row block (q, the output, dq): head h at h · headDim.
    var queryHeads: BatchStrides { BatchStrides(group: group * headDim, item: headDim) }
    /// A key-side row block (k, v, dk, dv): one head per group, shared by its items.
    var keyHeads: BatchStrides { BatchStrides(group: headDim, item: 0) }
    /// What q·k is multiplied by before the softmax: head_dim^-0.5 unless the model says otherwise
    /// (Gemma 3's query_pre_attn_scalar^-0.5).
    public let scale: Float

    public init(heads: Int, kvHeads: Int, headDim: Int, blockRows: Int = 128, window: Int? = nil, scale: Float? = nil) {
        precondition(window.map { $0 >= 1 } ?? true, "a sliding window holds at least the query itself")
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim; self.blockRows = blockRows
        self.window = window
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
    }
}

/// One block of query rows, for every head, of one sequence: the rows `firstRow..<firstRow + rows` of
/// the sequence that starts at token `start` and continues a prefix of `prefixLength` rows (at
/// `prefixStart`; 0 for none). In the sequence's positions the prefix is 0..<prefixLength and own row
/// r is prefixLength + r. The block's score columns are the keys at positions
/// `firstKey..<prefixLength + firstRow + rows`: the prefix keys among them (`prefix` columns, from
/// prefix row `firstKey`), then the own keys `ownFirst..<firstRow + rows`. Without a window
/// `firstKey` is 0; with one it is the first key the block's first row sees. Head h's scores are
/// the `rows × keys` matrix at h · `perHead`.
struct AttentionBlock {
    let start: Int, firstRow: Int, rows: Int
    let prefixStart: Int, prefixLength: Int
    let window: Int?
    let firstKey: Int
    /// Prefix columns, and the first own key.
    let prefix: Int, ownFirst: Int
    /// Columns of the block: its row stride.
    let keys: Int

    init(start: Int, firstRow: Int, rows: Int, prefixStart: Int, prefixLength: Int, window: Int?) {
        self.start = start; self.firstRow = firstRow; self.rows = rows
        self.prefixStart = prefixStart; self.prefixLength = prefixLength; self.window = window
        firstKey = window.map { max(0, prefixLength + firstRow - $0 + 1) } ?? 0
        prefix = max(0, prefixLength - firstKey)
        ownFirst = max(0, firstKey - prefixLength)
        keys = prefix + firstRow + rows - ownFirst
    }

    /// Own key columns (`prefix..<keys`).
    var ownKeys: Int { keys - prefix }
    /// Floats of one head's scores.
    var perHead: Int { rows * keys }
    /// The first prefix row the block reads (meaningful when `prefix` > 0).
    var prefixFirstRow: Int { prefixStart + firstKey }
    /// Columns row i of the block attends to: causal, and within the window when there is one.
    func columns(_ i: Int) -> Range<Int> {
        let position = prefixLength + firstRow + i
        let first = window.map { max(firstKey, position - $0 + 1) } ?? 0
        return (first - firstKey)..<(position + 1 - firstKey)
    }
    /// Where each head's scores lie: head after head, `group` heads to a key/value head.
    func scoreHeads(group: Int) -> BatchStrides { BatchStrides(group: group * perHead, item: perHead) }
}

/// Rows of a score block one thread takes at least when the softmax rows are split over threads.
private let softmaxRowsPerThread = 32

/// Calls `body` for every block of every sequence, with every head's scores
/// S = scale · q kᵀ (rows × keys, causal and window masks not yet applied) computed into `scores`
/// (head after head): one batch of products against the prefix keys (when there is a prefix) and
/// one against the sequence's own.
@inline(__always)
private func forEachBlock(q: ConstFloatPtr, k: ConstFloatPtr, starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                          prefixStarts: UnsafePointer<Int>?, prefixLengths: UnsafePointer<Int>?,
                          sequences: Int, shape: AttentionShape, scores: FloatPtr, matmul: any MatmulBackend,
                          _ body: (AttentionBlock) -> Void) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride
    for s in 0..<sequences {
        let s0 = starts[s], L = lengths[s]
        let pre = prefixLengths?[s] ?? 0, p0 = pre > 0 ? prefixStarts![s] : s0
        let qh = q + s0 * qs, kh = k + s0 * kvs, kp = k + p0 * kvs
        var r0 = 0
        while r0 < L {
            let b = AttentionBlock(start: s0, firstRow: r0, rows: min(shape.blockRows, L - r0),
                                   prefixStart: p0, prefixLength: pre, window: shape.window)
            let heads = b.scoreHeads(group: shape.group)
            if b.prefix > 0 {
                matmul.gemm(batch: shape.headBatch, transA: false, transB: true, m: b.rows, n: b.prefix, k: D, alpha: shape.scale,
                            a: qh + r0 * qs, lda: qs, aStrides: shape.queryHeads, b: kp + b.firstKey * kvs, ldb: kvs,
                            bStrides: shape.keyHeads, beta: 0, c: scores, ldc: b.keys, cStrides: heads)
            }
            matmul.gemm(batch: shape.headBatch, transA: false, transB: true, m: b.rows, n: b.ownKeys, k: D, alpha: shape.scale,
                        a: qh + r0 * qs, lda: qs, aStrides: shape.queryHeads, b: kh + b.ownFirst * kvs, ldb: kvs,
                        bStrides: shape.keyHeads, beta: 0, c: scores + b.prefix, ldc: b.keys, cStrides: heads)
            body(b)
            r0 += b.rows
        }
    }
}

/// out (T, H·D) = softmax(q kᵀ · scale, causal within each sequence) v, for each sequence of the
/// packed batch (`starts`, `lengths`); a sequence with a prefix (`prefixStarts`, `prefixLengths`,
/// length 0 for none; nil: no sequence has one) attends to all of its prefix rows first. Saves the
/// row log-sum-exp `lse` (T, H) so that backward recomputes the probabilities instead of storing T²
/// of them. `scratch` holds `shape.scratchCount(longest:)` floats, longest = most keys a row sees
/// (longest prefix + own length).
public func attentionForward(out: FloatPtr, lse: FloatPtr, q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr,
                             starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                             prefixStarts: UnsafePointer<Int>? = nil, prefixLengths: UnsafePointer<Int>? = nil,
                             sequences: Int, shape: AttentionShape, scratch: FloatPtr, matmul: any MatmulBackend) {
    let qs = shape.qStride, kvs = shape.kvStride, H = shape.heads
    forEachBlock(q: q, k: k, starts: starts, lengths: lengths, prefixStarts: prefixStarts, prefixLengths: prefixLengths,
                 sequences: sequences, shape: shape, scores: scratch, matmul: matmul) { b in
        let vh = v + (b.start + b.ownFirst) * kvs, vp = v + b.prefixFirstRow * kvs
        forEachPiece(of: H * b.rows, minimum: softmaxRowsPerThread, alignment: 1) { piece in
            for r in piece {
                let h = r / b.rows, i = r - h * b.rows
                let row = scratch + r * b.keys, valid = b.columns(i), n = valid.count, x = row + valid.lowerBound
                let m = maxOf(x, n)
                expInPlace(x, n, shift: m)
                let sum = sumOf(x, n)
                scaleInPlace(x, n, 1 / sum)
                row.update(repeating: 0, count: valid.lowerBound)
                (row + valid.upperBound).update(repeating: 0, count: b.keys - valid.upperBound)
                lse[(b.start + b.firstRow + i) * H + h] = m + logf(sum)
            }
        }
        let o = out + (b.start + b.firstRow) * qs, heads = b.scoreHeads(group: shape.group)
        if b.prefix > 0 {
            matmul.gemm(batch: shape.headBatch, transA: false, transB: false, m: b.rows, n: shape.headDim, k: b.prefix,
                        a: scratch, lda: b.keys, aStrides: heads, b: vp, ldb: kvs, bStrides: shape.keyHeads,
                        beta: 0, c: o, ldc: qs, cStrides: shape.queryHeads)
        }
        matmul.gemm(batch: shape.headBatch, transA: false, transB: false, m: b.rows, n: shape.headDim, k: b.ownKeys,
                    a: scratch + b.prefix, lda: b.keys, aStrides: heads, b: vh, ldb: kvs, bStrides: shape.keyHeads,
                    beta: b.prefix > 0 ? 1 : 0, c: o, ldc: qs, cStrides: shape.queryHeads)
    }
}

/// Backward of `attentionForward`. Overwrites dq; ACCUMULATES into dk and dv (several query heads
/// share one key/value head, and a prefix's rows are attended by their own sequence and by the
/// sequences that share them), which the caller zeroes first. `scratch` holds
/// `shape.scratchCount(longest:)` floats.
public func attentionBackward(dq: FloatPtr, dk: FloatPtr, dv: FloatPtr, dout: ConstFloatPtr,
                              q: ConstFloatPtr, k: ConstFloatPtr, v: ConstFloatPtr, out: ConstFloatPtr,
                              lse: ConstFloatPtr, starts: UnsafePointer<Int>, lengths: UnsafePointer<Int>,
                              prefixStarts: UnsafePointer<Int>? = nil, prefixLengths: UnsafePointer<Int>? = nil,
                              sequences: Int, shape: AttentionShape, scratch: FloatPtr, longest: Int,
                              matmul: any MatmulBackend) {
    let D = shape.headDim, qs = shape.qStride, kvs = shape.kvStride, H = shape.heads
    let P = scratch, dP = scratch + shape.scratchCount(longest: longest) / 2
    forEachBlock(q: q, k: k, starts: starts, lengths: lengths, prefixStarts: prefixStarts, prefixLengths: prefixLengths,
                 sequences: sequences, shape: shape, scores: P, matmul: matmul) { b in
        let nb = b.rows, nk = b.keys, pre = b.prefix, own = b.ownKeys, r0 = b.firstRow
        let kv = (b.start + b.ownFirst) * kvs, kvp = b.prefixFirstRow * kvs
        let rows = (b.start + r0) * qs
        let heads = b.scoreHeads(group: shape.group)
        // P = exp(scale · q kᵀ − lse), zero above the diagonal and outside the window.
        forEachPiece(of: H * nb, minimum: softmaxRowsPerThread, alignment: 1) { piece in
            for r in piece {
                let h = r / nb, i = r - h * nb
                let row = P + r * nk, valid = b.columns(i)
                expInPlace(row + valid.lowerBound, valid.count, shift: lse[(b.start + r0 + i) * H + h])
                row.update(repeating: 0, count: valid.lowerBound)
                (row + valid.upperBound).update(repeating: 0, count: nk - valid.upperBound)
            }
        }
        // x (a head's rows × keys block)ᵀ · y (the head's rows of dO or q), summed over each group's
        // query heads into its key/value head of dv or dk.
        let sum = BatchStrides(group: D, item: 0)
        func accumulate(_ x: FloatPtr, _ y: ConstFloatPtr, into target: FloatPtr) {
            matmul.gemm(batch: shape.headBatch, transA: true, transB: false, m: own, n: D, k: nb, a: x + pre, lda: nk,
                        aStrides: heads, b: y + rows, ldb: qs, bStrides: shape.queryHeads, beta: 1, c: target + kv, ldc: kvs,
                        cStrides: sum)
            if pre > 0 {
                matmul.gemm(batch: shape.headBatch, transA: true, transB: false, m: pre, n: D, k: nb, a: x, lda: nk,
                            aStrides: heads, b: y + rows, ldb: qs, bStrides: shape.queryHeads, beta: 1, c: target + kvp,
                            ldc: kvs, cStrides: sum)
            }
        }
        // dv += Pᵀ dO
        accumulate(P, dout, into: dv)
        // dP = dO vᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale
        if pre > 0 {
            matmul.gemm(batch: shape.headBatch, transA: false, transB: true, m: nb, n: pre, k: D, a: dout + rows, lda: qs,
                        aStrides: shape.queryHeads, b: v + kvp, ldb: kvs, bStrides: shape.keyHeads, beta: 0, c: dP, ldc: nk,
                        cStrides: heads)
        }
        matmul.gemm(batch: shape.headBatch, transA: false, transB: true, m: nb, n: own, k: D, a: dout + rows, lda: qs,
                    aStrides: shape.queryHeads, b: v + kv, ldb: kvs, bStrides: shape.keyHeads, beta: 0, c: dP + pre, ldc: nk,
                    cStrides: heads)
        forEachPiece(of: H * nb, minimum: softmaxRowsPerThread, alignment: 1) { piece in
            for r in piece {
                let h = r / nb, i = r - h * nb
                let dOi = dout + rows + i * qs + h * D, Oi = out + rows + i * qs + h * D
                var delta: Float = 0
                for d in 0..<D { delta += dOi[d] * Oi[d] }
                let prow = P + r * nk, drow = dP + r * nk, valid = b.columns(i)
                for j in 0..<valid.lowerBound { drow[j] = 0 }
                for j in valid { drow[j] = prow[j] * (drow[j] - delta) * shape.scale }
                for j in valid.upperBound..<nk { drow[j] = 0 }
            }
        }
        // dq = dS k;  dk += dSᵀ q
        if pre > 0 {
            matmul.gemm(batch: shape.headBatch, transA: false, transB: false, m: nb, n: D, k: pre, a: dP, lda: nk,
                        aStrides: heads, b: k + kvp, ldb: kvs, bStrides: shape.keyHeads, beta: 0, c: dq + rows, ldc: qs,
                        cStrides: shape.queryHeads)
        }
        matmul.gemm(batch: shape.headBatch, transA: false, transB: false, m: nb, n: D, k: own, a: dP + pre, lda: nk,
                    aStrides: heads, b: k + kv, ldb: kvs, bStrides: shape.keyHeads, beta: pre > 0 ? 1 : 0, c: dq + rows,
                    ldc: qs, cStrides: shape.queryHeads)
        accumulate(dP, q, into: dk)
    }
}
