import Foundation

// SwiGLU MLP activation: h = silu(gate) ⊙ up.

public func swigluForward(out: FloatPtr, gate: ConstFloatPtr, up: ConstFloatPtr, count: Int) {
    forEachPiece(of: count) { piece in
        for i in piece {
            let g = gate[i]
            out[i] = g / (1 + fastExp(-g)) * up[i]
        }
    }
}

/// dgate = dh · up · σ(g)(1 + g(1 − σ(g))); dup = dh · silu(g). Overwrites dgate and dup.
public func swigluBackward(dgate: FloatPtr, dup: FloatPtr, dout: ConstFloatPtr, gate: ConstFloatPtr,
                           up: ConstFloatPtr, count: Int) {
    forEachPiece(of: count) { piece in
        for i in piece {
            let g = gate[i]
            let sig = 1 / (1 + fastExp(-g))
            dgate[i] = dout[i] * up[i] * sig * (1 + g * (1 - sig))
            dup[i] = dout[i] * g * sig
        }
    }
}
