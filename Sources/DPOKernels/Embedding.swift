import Foundation

// Embedding lookup; its backward scatters the rows' gradients back into the table.

public func embeddingForward(out: FloatPtr, tokens: UnsafePointer<Int32>, table: ConstFloatPtr, rows: Int, channels: Int) {
    for t in 0..<rows {
        (out + t * channels).update(from: table + Int(tokens[t]) * channels, count: channels)
    }
}

/// `skipToken` (the padding index) receives no gradient, as torch's nn.Embedding(padding_idx:).
public func embeddingBackward(dtable: FloatPtr, dout: ConstFloatPtr, tokens: UnsafePointer<Int32>, rows: Int, channels: Int,
                              skipToken: Int? = nil) {
    let skip = Int32(skipToken ?? -1)
    for t in 0..<rows where tokens[t] != skip {
        let d = dtable + Int(tokens[t]) * channels, g = dout + t * channels
        for c in 0..<channels { d[c] += g[c] }
    }
}
