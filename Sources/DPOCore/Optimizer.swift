import Foundation

/// AdamW as torch.optim.AdamW: decoupled weight decay, bias correction, eps added after the bias
/// correction of √v. Moments are two flat buffers in the parameter layout; the update works on any
/// range of it, so a rank can own a shard (ZeRO-1) without another code path.
public final class AdamW {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Per element: 1 where weight decay applies, 0 where not (biases and norm weights, as TRL's
    /// `get_decay_parameter_names`).
    public let decayMask: FloatBuffer
    /// Optimizer steps taken (t in the bias correction).
    public var step = 0

    public init(layout: ParameterLayout, beta1: Double, beta2: Double, eps: Double, weightDecay: Double) {
        self.beta1 = Float(beta1); self.beta2 = Float(beta2); self.eps = Float(eps); self.weightDecay = Float(weightDecay)
        m = FloatBuffer(count: layout.count)
        v = FloatBuffer(count: layout.count)
        decayMask = FloatBuffer(count: layout.count)
        for t in layout.tensors where Self.decays(t.name) {
            (decayMask.pointer + t.offset).update(repeating: 1, count: t.count)
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

    /// One step over params[range] with grads[range] at learning rate `lr` (call `beginStep` first).
    public func update(params: FloatPtr, grads: ConstFloatPtr, range: Range<Int>, lr: Float) {
        let t = Float(step)
        let bc1 = 1 - powf(beta1, t), bc2Sqrt = (1 - powf(beta2, t)).squareRoot()
        let stepSize = lr / bc1, decay = lr * weightDecay
        let b1 = beta1, b2 = beta2, e = eps
        let mp = m.pointer, vp = v.pointer, mask = decayMask.pointer
        for i in range {
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

/// The L2 norm of a gradient range, accumulated in float64.
public func sumOfSquares(_ p: ConstFloatPtr, range: Range<Int>) -> Double {
    var total = 0.0
    var i = range.lowerBound
    // Blocks of fp32 partial sums keep it fast and accurate enough (relative error ~1e-7 per block).
    while i < range.upperBound {
        let end = min(i + 4096, range.upperBound)
        var s: Float = 0
        for j in i..<end { s += p[j] * p[j] }
        total += Double(s)
        i = end
    }
    return total
}
