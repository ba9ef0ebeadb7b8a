import DPOKernels
import DPOModel
import Foundation

/// AdamW as torch.optim.AdamW: decoupled weight decay, bias correction, eps added after the bias
/// correction of √v. Moments are two flat buffers in the parameter layout; the update works on any
/// range of it, so a rank can own a shard (ZeRO-1) without another code path.
public final class AdamW {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// The range of the flat parameter buffer this optimizer owns: all of it, or with ZeRO-1 this
    /// rank's shard. The moments below cover only this range.
    public let shard: Range<Int>
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Per element of the shard: 1 where weight decay applies, 0 where not (biases and norm weights,
    /// as TRL's `get_decay_parameter_names`).
    public let decayMask: FloatBuffer
    /// Optimizer steps taken (t in the bias correction).
    public var step = 0

    public init(layout: ParameterLayout, shard: Range<Int>? = nil, beta1: Double, beta2: Double, eps: Double, weightDecay: Double) {
        self.beta1 = Float(beta1); self.beta2 = Float(beta2); self.eps = Float(eps); self.weightDecay = Float(weightDecay)
        let shard = shard ?? 0..<layout.count
        self.shard = shard
        m = FloatBuffer(count: shard.count)
        v = FloatBuffer(count: shard.count)
        decayMask = FloatBuffer(count: shard.count)
        for t in layout.tensors where Self.decays(t.name) {
            let lower = max(t.offset, shard.lowerBound), upper = min(t.offset + t.count, shard.upperBound)
            if lower < upper {
                (decayMask.pointer + lower - shard.lowerBound).update(repeating: 1, count: upper - lower)
            }
        }
    }

    /// transformers excludes a parameter from weight decay when its lower-cased name matches
    /// `bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)`.
    public static func decays(_ name: String) -> Bool {
        let n = name.lowercased()
        if n.contains("bias") || n.contains("layernorm") || n.contains("rmsnorm") { return false }
        let parts = n.split(separator: ".")
        if parts.contains("norm") { return false }
        if parts.contains(where: { $0.hasSuffix("_norm") }) { return false }
        return true
    }

    /// One step over the shard: params[shard] with grads[shard] at learning rate `lr` (call
    /// `beginStep` first). Pointers are to the whole flat buffers.
    public func update(params: FloatPtr, grads: ConstFloatPtr, lr: Float) {
        let t = Float(step)
        let bc1 = 1 - powf(beta1, t), bc2Sqrt = (1 - powf(beta2, t)).squareRoot()
        let stepSize = lr / bc1, decay = lr * weightDecay
        let b1 = beta1, b2 = beta2, e = eps
        let base = shard.lowerBound
        let mp = m.pointer - base, vp = v.pointer - base, mask = decayMask.pointer - base
        for i in shard {
            let g = grads[i]
            var p = params[i]
            p -= decay * mask[i] * p
            let mi = b1 * mp[i] + (1 - b1) * g
            let vi = b2 * vp[i] + (1 - b2) * g * g
            mp[i] = mi
            vp[i] = vi
            params[i] = p - stepSize * mi / (vi.squareRoot() / bc2Sqrt + e)
        }
    }

    public func beginStep() { step += 1 }
}

/// Learning-rate schedules as transformers' `get_scheduler` (LambdaLR, stepped once per optimizer
/// step): the k-th step (k = 0 first) runs at lr · factor(k). With warmup the first step runs at 0.
public struct LearningRateSchedule: Sendable {
    public enum Kind: String, Sendable { case constant, constantWithWarmup = "constant_with_warmup", linear, cosine }
    public let kind: Kind
    public let peak: Double
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(kind: Kind, peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind; self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    public func rate(atStep k: Int) -> Double {
        let w = Double(warmupSteps), kk = Double(k), total = Double(totalSteps)
        switch kind {
        case .constant:
            return peak
        case .constantWithWarmup:
            return k < warmupSteps ? peak * kk / max(1, w) : peak
        case .linear:
            if k < warmupSteps { return peak * kk / max(1, w) }
            return peak * max(0, (total - kk) / max(1, total - w))
        case .cosine:
            if k < warmupSteps { return peak * kk / max(1, w) }
            let progress = (kk - w) / max(1, total - w)
            return peak * max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        }
    }
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
        var s: Float = 0
        for j in i..<end { s += p[j] * p[j] }
        total += Double(s)
        i = end
    }
    return total
}
