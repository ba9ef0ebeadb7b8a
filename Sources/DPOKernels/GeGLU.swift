import Foundation

// GeGLU MLP activation with the tanh form of GELU (transformers' `gelu_pytorch_tanh`, Gemma 3):
// h = gelu(gate) ⊙ up, gelu(g) = g/2 · (1 + tanh(√(2/π) · (g + 0.044715 g³))), in fp32.

private let geluK: Float = 0.7978845608028654  // √(2/π)
private let geluA: Float = 0.044715

public func gegluTanhForward(out: FloatPtr, gate: ConstFloatPtr, up: ConstFloatPtr, count: Int) {
    forEachPiece(of: count) { piece in
        for i in piece {
            let g = gate[i]
            out[i] = 0.5 * g * (1 + tanhf(geluK * (g + geluA * g * g * g))) * up[i]
        }
    }
}

/// gelu'(g) = (1 + t)/2 + g/2 · (1 − t²) · √(2/π) · (1 + 3 · 0.044715 g²), t = tanh(√(2/π)(g + 0.044715 g³));
/// dgate = dh · up · gelu'(g); dup = dh · gelu(g). Overwrites dgate and dup.
public func gegluTanhBackward(dgate: FloatPtr, dup: FloatPtr, dout: ConstFloatPtr, gate: ConstFloatPtr,
                              up: ConstFloatPtr, count: Int) {
    forEachPiece(of: count) { piece in
        for i in piece {
            let g = gate[i]
            let t = tanhf(geluK * (g + geluA * g * g * g))
            let slope = 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * geluK * (1 + 3 * geluA * g * g)
            dgate[i] = dout[i] * up[i] * slope
            dup[i] = dout[i] * 0.5 * g * (1 + t)
        }
    }
}
