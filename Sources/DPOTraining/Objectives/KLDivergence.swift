import DPOKernels
import DPOModel
import Foundation

/// KL(π ‖ πref) summed over the scored rows of the batch both models last ran forward on, a few
/// rows at a time: Σ_v π(v) (log π(v) − log πref(v)).
enum KLDivergence {
    static func sum(policy: Transformer, reference: Transformer, rows: Int, chunk: Int = 16) -> (Double, Int) {
        let V = policy.config.vocabSize
        let p = FloatBuffer(count: chunk * V, zeroed: false), q = FloatBuffer(count: chunk * V, zeroed: false)
        let lseP = policy.scoredLogSumExp, lseQ = reference.scoredLogSumExp
        var total = 0.0
        var r0 = 0
        while r0 < rows {
            let n = min(chunk, rows - r0)
            policy.scoredRowLogits(first: r0, count: n, into: p.pointer)
            reference.scoredRowLogits(first: r0, count: n, into: q.pointer)
            klDivergenceAdd(into: &total, p: p.pointer, q: q.pointer, lseP: lseP.baseAddress! + r0,
                            lseQ: lseQ.baseAddress! + r0, rows: n, vocab: V)
            r0 += n
        }
        return (total, rows)
    }
}
