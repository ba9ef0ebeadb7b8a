import Foundation

/// The preference losses of TRL 1.16's DPOTrainer (and SimPO/ORPO from its CPO/ORPO trainers), as
/// functions of each pair's summed completion log-probs. Each returns the micro-batch loss and its
/// derivative with respect to every pair's policy log-prob sums, which is all backward needs: a
/// sequence's log-prob is a sum over its tokens, so every scored token of a sequence gets the same
/// dL/dlogp.
///
/// Notation as TRL: cl = logπ(chosen) − logπref(chosen), rl likewise, Δ = cl − rl, β = beta,
/// ε = label_smoothing. Log-sigmoid is computed as −softplus(−x), so large margins give no NaN.
public enum PreferenceLossType: String, CaseIterable, Sendable {
    case sigmoid, hinge, ipo, robust
    case exoPair = "exo_pair", ncaPair = "nca_pair", bcoPair = "bco_pair", sppoHard = "sppo_hard"
    case aot, aotUnpaired = "aot_unpaired", apoZero = "apo_zero", apoDown = "apo_down"
    case discopop, sigmoidNorm = "sigmoid_norm", sft
    case simpo, orpo

    /// Whether the loss compares the policy with a reference: SimPO, ORPO and the SFT term look at
    /// the policy alone. The one place this is decided: the config check, the objective (which loads
    /// a reference or not) and the reference log-prob cache all ask it.
    public var usesReference: Bool { !(self == .simpo || self == .orpo || self == .sft) }

    /// SimPO and ORPO are defined without a reference, so they combine only with loss types that use
    /// none: mixed with a reference-based type, the run would keep a reference for part of the loss,
    /// and TRL has no such combination either (SimPO and ORPO live in their own trainers there).
    public var combinesOnlyWithoutReference: Bool { self == .simpo || self == .orpo }
}

/// One pair's numbers for the loss.
public struct PairLogps: Sendable {
    public var policyChosen: Double
    public var policyRejected: Double
    public var referenceChosen: Double
    public var referenceRejected: Double
    /// Completion tokens scored (the lengths IPO and the normalised losses divide by).
    public var chosenTokens: Int
    public var rejectedTokens: Int

    public init(policyChosen: Double, policyRejected: Double, referenceChosen: Double, referenceRejected: Double,
                chosenTokens: Int, rejectedTokens: Int) {
        self.policyChosen = policyChosen; self.policyRejected = policyRejected
        self.referenceChosen = referenceChosen; self.referenceRejected = referenceRejected
        self.chosenTokens = chosenTokens; self.rejectedTokens = rejectedTokens
    }
}

public struct PreferenceLoss: Sendable {
    public var types: [PreferenceLossType]
    public var weights: [Double]
    public var beta: Double
    public var labelSmoothing: Double
    public var simpoGamma: Double
    public var orpoAlpha: Double
    public var discopopTau: Double

    public init(types: [PreferenceLossType], weights: [Double]? = nil, beta: Double, labelSmoothing: Double = 0,
                simpoGamma: Double = 0.5, orpoAlpha: Double = 0.1, discopopTau: Double = 0.05) {
        self.types = types
        self.weights = weights ?? Array(repeating: 1, count: types.count)
        self.beta = beta; self.labelSmoothing = labelSmoothing; self.simpoGamma = simpoGamma
        self.orpoAlpha = orpoAlpha; self.discopopTau = discopopTau
    }

    public var needsReference: Bool { types.contains(where: \.usesReference) }

    /// The micro-batch loss Σ_k w_k · L_k (each L_k a mean over the pairs, `sft` a mean over chosen
    /// tokens) with dL/d(policy chosen sum) and dL/d(policy rejected sum) for each pair.
    public func evaluate(_ pairs: [PairLogps]) -> (loss: Double, dChosen: [Double], dRejected: [Double]) {
        var total = 0.0
        var dc = [Double](repeating: 0, count: pairs.count), dr = dc
        for (type, weight) in zip(types, weights) {
            let (l, c, r) = term(type, pairs)
            total += weight * l
            for i in pairs.indices {
                dc[i] += weight * c[i]
                dr[i] += weight * r[i]
            }
        }
        return (total, dc, dr)
    }

    /// One loss type's micro-batch value and derivatives.
    func term(_ type: PreferenceLossType, _ pairs: [PairLogps]) -> (Double, [Double], [Double]) {
        let n = Double(pairs.count), b = beta, eps = labelSmoothing
        var dc = [Double](repeating: 0, count: pairs.count), dr = dc
        var sum = 0.0

        /// Losses of x = βΔ alone: value and dℓ/dx per pair; Δ's derivative is +1 for chosen, −1 for rejected.
        func overMargin(_ f: (Double) -> (Double, Double)) -> (Double, [Double], [Double]) {
            for (i, p) in pairs.enumerated() {
                let delta = (p.policyChosen - p.referenceChosen) - (p.policyRejected - p.referenceRejected)
                let (value, dx) = f(b * delta)
                sum += value
                dc[i] = dx * b / n
                dr[i] = -dx * b / n
            }
            return (sum / n, dc, dr)
        }

        switch type {
        case .sigmoid:
            return overMargin { x in (-logSigmoid(x), -sigmoid(-x)) }
        case .hinge:
            return overMargin { x in x < 1 ? (1 - x, -1) : (0, 0) }
        case .robust:
            // Unbiased under label noise: (−(1−ε)·logσ(x) + ε·logσ(−x)) / (1 − 2ε).
            return overMargin { x in
                ((-(1 - eps) * logSigmoid(x) + eps * logSigmoid(-x)) / (1 - 2 * eps),
                 (-(1 - eps) * sigmoid(-x) - eps * sigmoid(x)) / (1 - 2 * eps))
            }
        case .exoPair:
            // q_w(log q_w − log(1−ε)) + q_l(log q_l − log ε), q_w = σ(x), q_l = σ(−x).
            return overMargin { x in
                let qw = sigmoid(x), ql = sigmoid(-x), lw = logSigmoid(x), ll = logSigmoid(-x)
                let value = qw * (lw - log(1 - eps)) + ql * (ll - log(eps))
                // d/dx: qw·ql·(lw − log(1−ε)) + qw·ql − ql·qw·(ll − log ε) − ql·qw
                let dx = qw * ql * ((lw - log(1 - eps)) - (ll - log(eps)))
                return (value, dx)
            }
        case .discopop:
            // x = βΔ, m = σ(x/τ): (1−m)·(−logσ(x)) + m·e^(−x).
            let tau = discopopTau
            return overMargin { x in
                let m = sigmoid(x / tau), dm = m * (1 - m) / tau
                let value = (1 - m) * -logSigmoid(x) + m * exp(-x)
                let dx = -dm * -logSigmoid(x) + (1 - m) * -sigmoid(-x) + dm * exp(-x) - m * exp(-x)
                return (value, dx)
            }
        case .ipo, .sigmoidNorm:
            // Each log-ratio divided by its completion length before the comparison.
            for (i, p) in pairs.enumerated() {
                let lc = Double(max(p.chosenTokens, 1)), lr = Double(max(p.rejectedTokens, 1))
                let h = (p.policyChosen - p.referenceChosen) / lc - (p.policyRejected - p.referenceRejected) / lr
                let value: Double, dh: Double
                if type == .ipo {
                    let u = h - 1 / (2 * b)
                    value = u * u
                    dh = 2 * u
                } else {
                    value = -logSigmoid(b * h)
                    dh = -sigmoid(-b * h) * b
                }
                sum += value
                dc[i] = dh / lc / n
                dr[i] = -dh / lr / n
            }
        case .ncaPair:
            // −logσ(β·cl) − ½logσ(−β·cl) − ½logσ(−β·rl)
            for (i, p) in pairs.enumerated() {
                let c = b * (p.policyChosen - p.referenceChosen), r = b * (p.policyRejected - p.referenceRejected)
                sum += -logSigmoid(c) - 0.5 * logSigmoid(-c) - 0.5 * logSigmoid(-r)
                dc[i] = (-sigmoid(-c) + 0.5 * sigmoid(c)) * b / n
                dr[i] = 0.5 * sigmoid(r) * b / n
            }
        case .bcoPair:
            // −logσ(β·cl) − logσ(−β·rl)
            for (i, p) in pairs.enumerated() {
                let c = b * (p.policyChosen - p.referenceChosen), r = b * (p.policyRejected - p.referenceRejected)
                sum += -logSigmoid(c) - logSigmoid(-r)
                dc[i] = -sigmoid(-c) * b / n
                dr[i] = sigmoid(r) * b / n
            }
        case .sppoHard:
            // (cl − 1/(2β))² + (rl + 1/(2β))²
            for (i, p) in pairs.enumerated() {
                let a = (p.policyChosen - p.referenceChosen) - 1 / (2 * b)
                let r = (p.policyRejected - p.referenceRejected) + 1 / (2 * b)
                sum += a * a + r * r
                dc[i] = 2 * a / n
                dr[i] = 2 * r / n
            }
        case .apoZero:
            // (1 − σ(β·cl)) + σ(β·rl)
            for (i, p) in pairs.enumerated() {
                let c = b * (p.policyChosen - p.referenceChosen), r = b * (p.policyRejected - p.referenceRejected)
                sum += (1 - sigmoid(c)) + sigmoid(r)
                dc[i] = -sigmoid(c) * sigmoid(-c) * b / n
                dr[i] = sigmoid(r) * sigmoid(-r) * b / n
            }
        case .apoDown:
            // σ(β·cl) + 1 − σ(β·(cl − rl))
            for (i, p) in pairs.enumerated() {
                let c = b * (p.policyChosen - p.referenceChosen), r = b * (p.policyRejected - p.referenceRejected)
                let s = sigmoid(c - r)
                sum += sigmoid(c) + 1 - s
                dc[i] = (sigmoid(c) * sigmoid(-c) - s * (1 - s)) * b / n
                dr[i] = s * (1 - s) * b / n
            }
        case .aot, .aotUnpaired:
            // Sorted within the micro-batch: aot compares sorted policy and reference chosen−rejected
            // gaps; aot_unpaired sorted chosen and rejected log-ratios. The gradient follows the sort.
            let first: [Double], second: [Double]
            if type == .aot {
                first = pairs.map { $0.policyChosen - $0.policyRejected }
                second = pairs.map { $0.referenceChosen - $0.referenceRejected }
            } else {
                first = pairs.map { $0.policyChosen - $0.referenceChosen }
                second = pairs.map { $0.policyRejected - $0.referenceRejected }
            }
            let order1 = first.indices.sorted { first[$0] < first[$1] }
            let order2 = second.indices.sorted { second[$0] < second[$1] }
            for k in pairs.indices {
                let x = b * (first[order1[k]] - second[order2[k]])
                sum += -(1 - eps) * logSigmoid(x) - eps * logSigmoid(-x)
                let dx = (-(1 - eps) * sigmoid(-x) + eps * sigmoid(x)) * b / n
                if type == .aot {
                    dc[order1[k]] += dx
                    dr[order1[k]] -= dx
                } else {
                    dc[order1[k]] += dx
                    dr[order2[k]] -= dx
                }
            }
        case .sft:
            // Negative log-likelihood of the chosen completions, a mean over all their tokens.
            let tokens = Double(max(pairs.reduce(0) { $0 + $1.chosenTokens }, 1))
            for (i, p) in pairs.enumerated() {
                sum += -p.policyChosen
                dc[i] = -1 / tokens
            }
            return (sum / tokens, dc, dr)
        case .simpo:
            // SimPO (CPO trainer): length-averaged log-probs, margin γ/β: −(1−ε)logσ(βh) − ε·logσ(−βh),
            // h = avg(c) − avg(r) − γ/β.
            for (i, p) in pairs.enumerated() {
                let lc = Double(max(p.chosenTokens, 1)), lr = Double(max(p.rejectedTokens, 1))
                let h = p.policyChosen / lc - p.policyRejected / lr - simpoGamma / b
                let x = b * h
                sum += -(1 - eps) * logSigmoid(x) - eps * logSigmoid(-x)
                let dh = (-(1 - eps) * sigmoid(-x) + eps * sigmoid(x)) * b
                dc[i] = dh / lc / n
                dr[i] = -dh / lr / n
            }
        case .orpo:
            // ORPO: NLL of chosen (length-averaged) − α·logσ(log odds ratio), odds from the
            // length-averaged log-probs: log(p/(1−p)) = a − log(1 − e^a).
            for (i, p) in pairs.enumerated() {
                let lc = Double(max(p.chosenTokens, 1)), lr = Double(max(p.rejectedTokens, 1))
                let ac = p.policyChosen / lc, ar = p.policyRejected / lr
                let logOdds = (ac - ar) - (log1mexp(ac) - log1mexp(ar))
                sum += -ac - orpoAlpha * logSigmoid(logOdds)
                let g = -orpoAlpha * sigmoid(-logOdds)  // dℓ/d logOdds
                // d logOdds/da = 1 + e^a/(1−e^a) = 1/(1−e^a)
                dc[i] = (-1 + g / -expm1(ac)) / lc / n
                dr[i] = (-g / -expm1(ar)) / lr / n
            }
        }
        return (sum / n, dc, dr)
    }
}

/// log σ(x) = −softplus(−x), stable for large |x|.
@inline(__always) public func logSigmoid(_ x: Double) -> Double {
    x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x))
}

@inline(__always) public func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}

/// log(1 − e^a) for a < 0.
@inline(__always) func log1mexp(_ a: Double) -> Double {
    a > -0.693 ? log(-expm1(a)) : log1p(-exp(a))
}
