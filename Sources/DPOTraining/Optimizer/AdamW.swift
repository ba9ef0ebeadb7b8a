import DPOKernels
import DPOModel
import Foundation

/// AdamW as torch.optim.AdamW (the update itself is `adamwUpdate`): decoupled weight decay, bias
/// correction, eps added after the bias correction of √v. Moments are two flat buffers in the
/// parameter set's layout; the update works on any range of it, so a rank can own a shard (ZeRO-1)
/// without another code path.
public final class AdamW {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// The range of the flat parameter buffer this optimizer owns: all of it, or with ZeRO-1 this
    /// rank's shard. The moments below cover only this range.
    public let shard: Range<Int>
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// The shard in runs of elements that all take weight decay or all do not (biases and norm weights
    /// do not, as TRL's `get_decay_parameter_names`), in order.
    public let decayRuns: [(range: Range<Int>, decays: Bool)]
    /// Optimizer steps taken (t in the bias correction).
    public var step = 0

    /// An optimizer for `shard` of `parameters` (nil: all of it).
    public init(parameters: ParameterSet, shard: Range<Int>? = nil, beta1: Double, beta2: Double, eps: Double, weightDecay: Double) {
        self.beta1 = Float(beta1); self.beta2 = Float(beta2); self.eps = Float(eps); self.weightDecay = Float(weightDecay)
        let shard = shard ?? 0..<parameters.count
        self.shard = shard
        m = FloatBuffer(count: shard.count)
        v = FloatBuffer(count: shard.count)
        var runs: [(range: Range<Int>, decays: Bool)] = []
        for t in parameters.tensors.sorted(by: { $0.offset < $1.offset }) {
            let lower = max(t.offset, shard.lowerBound), upper = min(t.offset + t.count, shard.upperBound)
            guard lower < upper else { continue }
            let decays = Self.decays(t.name)
            if let last = runs.last, last.decays == decays, last.range.upperBound == lower {
                runs[runs.count - 1].range = last.range.lowerBound..<upper
            } else {
                runs.append((lower..<upper, decays))
            }
        }
        decayRuns = runs
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

    /// One step over the shard of `parameters` with its gradients, each multiplied by `gradScale`
    /// first (gradient clipping), at learning rate `lr` (call `beginStep` first).
    public func update(_ parameters: ParameterSet, lr: Float, gradScale: Float = 1) {
        for run in decayRuns {
            adamwUpdate(params: parameters.values.pointer, grads: parameters.gradients!.pointer, m: m.pointer, v: v.pointer,
                        range: run.range, momentOffset: shard.lowerBound, lr: lr, beta1: beta1, beta2: beta2, eps: eps,
                        weightDecay: run.decays ? weightDecay : 0, step: step, gradScale: gradScale)
        }
    }

    public func beginStep() { step += 1 }
}
