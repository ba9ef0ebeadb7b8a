import Foundation

// The optimizer's side of the gradient: fp64 sums over micro-batches, the global norm, AdamW.

/// total[i] += Double(g[i]) for i in range: one micro-batch's fp32 gradient into the fp64 sum.
public func accumulateWidened(_ total: UnsafeMutablePointer<Double>, _ g: ConstFloatPtr, range: Range<Int>) {
    for i in range { total[i] += Double(g[i]) }
}

/// g[i] = Float(total[i]) for i in range: the summed gradient rounded to fp32 once.
public func roundToFloat(_ g: FloatPtr, _ total: UnsafePointer<Double>, range: Range<Int>) {
    for i in range { g[i] = Float(total[i]) }
}

/// Elements per fp32 partial sum in `sumOfSquares`.
public let normBlock = 4096

/// Σ p[i]² over a range, in fp32 blocks of `normBlock` elements (fast, ~1e-7 relative each) added in
/// float64. A range starting on a block boundary sums the same blocks as the whole buffer would.
public func sumOfSquares(_ p: ConstFloatPtr, range: Range<Int>) -> Double {
    var total = 0.0
    var i = range.lowerBound
    while i < range.upperBound {
        let end = min(i + normBlock, range.upperBound)
        // Sixteen partial sums per block, added in one fixed order: the same bits for a block
        // wherever the range around it starts, and about 8× faster than one running sum.
        var acc = F16x.zero
        var j = i
        while j + 16 <= end { let x = load16(p + j); acc += x * x; j += 16 }
        var s = acc.sum()
        while j < end { s += p[j] * p[j]; j += 1 }
        total += Double(s)
        i = end
    }
    return total
}

/// One AdamW step (torch.optim.AdamW: decoupled weight decay, bias correction, eps added after the
/// bias correction of √v) over `range` of the flat buffers. `m`, `v` and `decayMask` (1 where weight
/// decay applies) hold only the range: element i of the range is at index i − range.lowerBound.
/// `step` is t of the bias correction, counted from 1. Each gradient is first multiplied by
/// `gradScale` (gradient clipping's factor; 1 leaves it as it is), which gives the same bits as
/// scaling the gradient buffer beforehand without another pass over it.
public func adamwUpdate(params: FloatPtr, grads: ConstFloatPtr, m: FloatPtr, v: FloatPtr, range: Range<Int>, momentOffset: Int,
                        lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step: Int,
                        gradScale: Float = 1) {
    let t = Float(step)
    let bc1 = 1 - powf(beta1, t), bc2Sqrt = (1 - powf(beta2, t)).squareRoot()
    let stepSize = lr / bc1, decay = lr * weightDecay
    // m and v cover the optimizer's shard, which starts `momentOffset` elements into the parameters.
    let mp = m - momentOffset, vp = v - momentOffset
    let oneMinusBeta1 = 1 - beta1, oneMinusBeta2 = 1 - beta2
    // Sixteen at a time with the same operations in the same order as the scalar tail, so every
    // element gets the same bits either way (the compiler does not vectorise the scalar loop: it
    // cannot rule out that the five buffers overlap), and so whichever thread takes which piece.
    forEachPiece(of: range.count) { piece in
        var i = range.lowerBound + piece.lowerBound
        let end = range.lowerBound + piece.upperBound
        while i + 16 <= end {
            let g = load16(grads + i) * gradScale
            var p = load16(params + i)
            p -= decay * p
            let mi = beta1 * load16(mp + i) + oneMinusBeta1 * g
            let vi = beta2 * load16(vp + i) + oneMinusBeta2 * g * g
            store16(mi, mp + i)
            store16(vi, vp + i)
            store16(p - stepSize * mi / (vi.squareRoot() / bc2Sqrt + eps), params + i)
            i += 16
        }
        while i < end {
            let g = grads[i] * gradScale
            var p = params[i]
            p -= decay * p
            let mi = beta1 * mp[i] + oneMinusBeta1 * g
            let vi = beta2 * vp[i] + oneMinusBeta2 * g * g
            mp[i] = mi
            vp[i] = vi
            params[i] = p - stepSize * mi / (vi.squareRoot() / bc2Sqrt + eps)
            i += 1
        }
    }
}
