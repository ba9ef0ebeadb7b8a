import Foundation

// RoPE (Hugging Face rotate-half: pairs (i, i + D/2) share frequency i).

/// How RoPE frequencies are computed. Hugging Face's `rope_type` names.
public enum RopeScaling: Equatable, Sendable {
    case none
    /// Llama 3.1: low frequencies divided by `factor`, a smooth ramp between the two wavelengths.
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int)
    /// Positions divided by `factor` (inverse frequencies divided by it).
    case linear(factor: Double)
}

/// cos/sin tables (positions, D/2), computed as transformers does: inverse frequencies and the
/// angle position × inv_freq rounded to fp32, so positions far out agree with it too.
public struct RopeTable {
    public let halfDim: Int
    public let positions: Int
    public let cos: [Float]
    public let sin: [Float]

    public init(headDim: Int, theta: Double, scaling: RopeScaling, positions: Int) {
        let half = headDim / 2
        var invFreq = (0..<half).map { i -> Float in
            1 / Float(pow(Float(theta), Float(2 * i) / Float(headDim)))
        }
        switch scaling {
        case .none: break
        case let .linear(factor):
            invFreq = invFreq.map { $0 / Float(factor) }
        case let .llama3(factor, lowFactor, highFactor, original):
            let f = Float(factor), lo = Float(lowFactor), hi = Float(highFactor), old = Float(original)
            let lowWavelen = old / lo, highWavelen = old / hi
            invFreq = invFreq.map { freq in
                let wavelen = 2 * Float.pi / freq
                if wavelen < highWavelen { return freq }
                if wavelen > lowWavelen { return freq / f }
                let smooth = (old / wavelen - lo) / (hi - lo)
                return (1 - smooth) * freq / f + smooth * freq
            }
        }
        var cosTable = [Float](repeating: 0, count: positions * half)
        var sinTable = cosTable
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                cosTable[p * half + i] = Float(Foundation.cos(Double(angle)))
                sinTable[p * half + i] = Float(Foundation.sin(Double(angle)))
            }
        }
        halfDim = half
        self.positions = positions
        cos = cosTable
        sin = sinTable
    }
}

/// Rotates every head of x (rows, heads·D) in place by its token's position: the first `rotaryDim`
/// dimensions of each head (pairs (i, i + rotaryDim/2); all of them when nil), the rest unchanged
/// (Phi-3's partial rotary). The tables are those of a `RopeTable(headDim: rotaryDim, ...)`.
/// `inverse` applies the transpose rotation: the backward pass of the forward rotation.
public func ropeApply(_ x: FloatPtr, positions: UnsafePointer<Int32>, cos: ConstFloatPtr, sin: ConstFloatPtr,
                      rows: Int, heads: Int, headDim: Int, rotaryDim: Int? = nil, inverse: Bool) {
    let half = (rotaryDim ?? headDim) / 2
    let sign: Float = inverse ? -1 : 1
    for t in 0..<rows {
        let c = cos + Int(positions[t]) * half, s = sin + Int(positions[t]) * half
        for h in 0..<heads {
            let v = x + t * heads * headDim + h * headDim
            for i in 0..<half {
                let a = v[i], b = v[i + half], si = sign * s[i]
                v[i] = a * c[i] - b * si
                v[i + half] = b * c[i] + a * si
            }
        }
    }
}
