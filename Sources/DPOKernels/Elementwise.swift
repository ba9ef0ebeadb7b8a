import Foundation

// Row copies and sums around the decoder: residual connections, and moving the LM head's rows
// between the packed batch and the scored positions.

/// y[i] += x[i]: a residual connection.
public func addInPlace(_ y: FloatPtr, _ x: ConstFloatPtr, count: Int) {
    forEachPiece(of: count) { piece in
        for i in piece { y[i] += x[i] }
    }
}

/// out row i = inp row rows[i], for `count` rows of `channels`.
public func gatherRows(out: FloatPtr, inp: ConstFloatPtr, rows: UnsafePointer<Int32>, count: Int, channels: Int) {
    for i in 0..<count {
        (out + i * channels).update(from: inp + Int(rows[i]) * channels, count: channels)
    }
}

/// Backward of `gatherRows`: dinp row rows[i] += dout row i.
public func scatterAddRows(dinp: FloatPtr, dout: ConstFloatPtr, rows: UnsafePointer<Int32>, count: Int, channels: Int) {
    for i in 0..<count {
        let d = dinp + Int(rows[i]) * channels, g = dout + i * channels
        for j in 0..<channels { d[j] += g[j] }
    }
}
