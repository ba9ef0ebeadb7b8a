import Foundation

/// Learning-rate schedules as transformers' `get_scheduler` (LambdaLR, stepped once per optimizer
/// step): the k-th step (k = 0 first) runs at lr · factor(k). With warmup the first step runs at 0.
public struct LearningRateSchedule: Sendable {
    public enum Kind: String, CaseIterable, Sendable { case constant, constantWithWarmup = "constant_with_warmup", linear, cosine }
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
