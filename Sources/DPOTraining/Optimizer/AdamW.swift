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
