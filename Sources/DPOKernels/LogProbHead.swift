import Foundation

// The LM head and per-token log-probabilities, a chunk of rows at a time.

/// logits (rows, V) = hidden (rows, C) · weightᵀ: the LM head over some rows.
public func headLogits(out: FloatPtr, hidden: ConstFloatPtr, weight: ConstFloatPtr, rows: Int, channels: Int, vocab: Int,
                       matmul: any MatmulBackend) {
    matmul.gemm(transA: false, transB: true, m: rows, n: vocab, k: channels, a: hidden, lda: channels,
                b: weight, ldb: channels, beta: 0, c: out, ldc: vocab)
}

/// Walks `rows` hidden states `chunk` at a time, each chunk's logits (n × V) computed into
/// `logits(first row)` (unless `computingLogits` is false: they are there already) before
/// `body(first row, n, logits)`.
@inline(__always)
private func forEachChunk(hidden: ConstFloatPtr, weight: ConstFloatPtr, rows: Int, channels: Int, vocab: Int, chunk: Int,
                          logits: (Int) -> FloatPtr, computingLogits: Bool = true, matmul: any MatmulBackend,
                          _ body: (Int, Int, FloatPtr) -> Void) {
    var r0 = 0
    while r0 < rows {
        let n = min(chunk, rows - r0), out = logits(r0)
        if computingLogits {
            headLogits(out: out, hidden: hidden + r0 * channels, weight: weight, rows: n, channels: channels, vocab: vocab,
                       matmul: matmul)
        }
        body(r0, n, out)
        r0 += n
    }
}

/// Exponentials a head row's softmax is made of, `e^(z − m)` for its logits z and their max m, in
/// blocks of this many entries: forward and backward both compute them this way, so a softmax
/// recomputed in backward has forward's bits.
private let expBlock = 256

/// Replaces a row's logits z by e = e^(z − m), a block of `expBlock` entries at a time through the
/// stack block `e`; `each(e, z, k)` sees each block's exponentials before they replace its logits.
@inline(__always)
private func exponentiate(_ row: FloatPtr, vocab: Int, shift m: Float, through e: FloatPtr,
                          _ each: (ConstFloatPtr, ConstFloatPtr, Int) -> Void = { _, _, _ in }) {
    var b = 0
    while b < vocab {
        let k = min(expBlock, vocab - b)
        expInto(e, row + b, k, shift: m)
        each(e, row + b, k)
        (row + b).update(from: e, count: k)
        b += k
    }
}

/// A row holding e = e^(z − m), with s = Σ e (`sumOf`), becomes the softmax e · (1/s): the one way
/// both passes make it.
@inline(__always)
private func normalize(_ row: FloatPtr, vocab: Int, sum s: Float) {
    scaleInPlace(row, vocab, 1 / s)
}

/// For each of `rows` hidden states (rows, C): logp[i] = log softmax(h_i · Wᵀ)[target_i], plus the
/// row's log-sum-exp (kept for backward), the sum of its logits (for the `logits/*` metrics), the
/// softmax entropy and whether the target is the argmax (1 or 0, for `entropy` and
/// `mean_token_accuracy`), all from the one head product. Only `chunk` × V logits exist at any time
/// unless `keep` is given: then the rows' softmax probabilities (rows × V) are left there for
/// `logProbBackward`, which then needs no second head product.
///
/// As TRL 1.16's fused head (`trl/kernels/chunked_logprob.py`): entropy = log Σe^z − Σ p·z at
/// temperature 1, here log s − Σ e·(z − m) / s with e = e^(z − m), s = Σ e, which cancels less;
/// the target counts as the argmax only when it is the first maximum, as `torch.argmax` (a tie with
/// an earlier token is not a top-1 prediction). Cost beside the head product (2·C·V flops a row): one
/// more vectorised pass over the row (the weighted sum), a copy of it through a 1 KB stack block, and
/// a max over the entries before the target when the target holds the maximum; with `keep`, one
/// more pass that scales the row.
public func logProbForward(logp: FloatPtr, lse: FloatPtr, logitSum: FloatPtr, entropy: FloatPtr, top1: FloatPtr,
                           hidden: ConstFloatPtr, weight: ConstFloatPtr, targets: UnsafePointer<Int32>, rows: Int,
                           channels: Int, vocab: Int, chunk: Int, scratch: FloatPtr, keep: FloatPtr? = nil,
                           matmul: any MatmulBackend) {
    forEachChunk(hidden: hidden, weight: weight, rows: rows, channels: channels, vocab: vocab, chunk: chunk,
                 logits: { r0 in keep.map { $0 + r0 * vocab } ?? scratch }, matmul: matmul) { r0, n, logits in
        // Rows split over the kernel threads, each with its own stack block.
        forEachPiece(of: n, minimum: 1, alignment: 1) { piece in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: expBlock) { block in
                let e = block.baseAddress!
                for i in piece {
                    let row = logits + i * vocab, t = Int(targets[r0 + i])
                    let m = maxOf(row, vocab)
                    logitSum[r0 + i] = sumOf(row, vocab)
                    let targetLogit = row[t]
                    top1[r0 + i] = targetLogit == m && maxOf(row, t) < m ? 1 : 0
                    // e^(z − m) a block at a time, its weight against z − m summed before the block
                    // replaces the logits (they are not needed after this row).
                    var weighted: Float = 0
                    exponentiate(row, vocab: vocab, shift: m, through: e) { e, z, k in weighted += shiftedDot(e, z, k, shift: m) }
                    let s = sumOf(row, vocab), logS = logf(s)
                    lse[r0 + i] = m + logS
                    logp[r0 + i] = targetLogit - (m + logS)
                    entropy[r0 + i] = logS - weighted / s
                    if keep != nil { normalize(row, vocab: vocab, sum: s) }
                }
            }
        }
    }
}

/// Backward of `logProbForward` given dL/dlogp per row: dlogits = dlogp · (onehot(target) − softmax).
/// The softmax is `kept` (what `logProbForward` left in its `keep`; it is overwritten), else each
/// chunk's logits are computed again and their softmax made as forward made it: the two ways give
/// the same bits. Overwrites dhidden; accumulates into dweight (nil: a frozen head, whose
/// weight-gradient product is skipped).
public func logProbBackward(dhidden: FloatPtr, dweight: FloatPtr?, dlogp: ConstFloatPtr, hidden: ConstFloatPtr,
                            weight: ConstFloatPtr, targets: UnsafePointer<Int32>,
                            rows: Int, channels: Int, vocab: Int, chunk: Int, scratch: FloatPtr, kept: FloatPtr? = nil,
                            matmul: any MatmulBackend) {
    forEachChunk(hidden: hidden, weight: weight, rows: rows, channels: channels, vocab: vocab, chunk: chunk,
                 logits: { r0 in kept.map { $0 + r0 * vocab } ?? scratch }, computingLogits: kept == nil,
                 matmul: matmul) { r0, n, probabilities in
        forEachPiece(of: n, minimum: 1, alignment: 1) { piece in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: expBlock) { block in
                for i in piece {
                    let row = probabilities + i * vocab, g = dlogp[r0 + i]
                    if kept == nil {  // the logits' softmax, made as forward made it
                        exponentiate(row, vocab: vocab, shift: maxOf(row, vocab), through: block.baseAddress!)
                        normalize(row, vocab: vocab, sum: sumOf(row, vocab))
                    }
                    scaleInPlace(row, vocab, -g)
                    row[Int(targets[r0 + i])] += g
                }
            }
        }
        // dlogits feeds both products: a converting backend converts it once.
        matmul.holdingOperands(probabilities, nil) {
            matmul.gemm(transA: false, transB: false, m: n, n: channels, k: vocab, a: probabilities, lda: vocab, b: weight,
                        ldb: channels, beta: 0, c: dhidden + r0 * channels, ldc: channels)
            if let dweight {
                matmul.gemm(transA: true, transB: false, m: vocab, n: channels, k: n, a: probabilities, lda: vocab,
                            b: hidden + r0 * channels, ldb: channels, beta: 1, c: dweight, ldc: channels)
            }
        }
    }
}

/// Adds to `total`, row by row, KL(π ‖ πref) = Σ_v π(v) (log π(v) − log πref(v)) of `rows` rows,
/// given both models' logits (rows × vocab) and each row's log-sum-exp; in float64.
public func klDivergenceAdd(into total: inout Double, p: ConstFloatPtr, q: ConstFloatPtr, lseP: ConstFloatPtr,
                            lseQ: ConstFloatPtr, rows: Int, vocab: Int) {
    for i in 0..<rows {
        let lp = lseP[i], lq = lseQ[i]
        var kl = 0.0
        for v in 0..<vocab {
            let a = p[i * vocab + v] - lp, b = q[i * vocab + v] - lq
            kl += Double(expf(a)) * Double(a - b)
        }
        total += kl
    }
}
