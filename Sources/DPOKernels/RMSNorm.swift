import Foundation

// RMSNorm as Hugging Face computes it: weight · x / sqrt(mean(x²) + eps), in fp32.
// `weightOffset` 1 gives Gemma 3's (1 + weight) · x / sqrt(mean(x²) + eps): its weights are stored
// centred on 0; 0 (Llama's) adds nothing, so those bits are unchanged.

public func rmsnormForward(out: FloatPtr, rstd: FloatPtr, inp: ConstFloatPtr, weight: ConstFloatPtr,
                           eps: Float, rows: Int, channels: Int, weightOffset: Float = 0) {
    forEachPiece(of: rows, minimum: max(1, 32_768 / max(channels, 1)), alignment: 1) { piece in
        for t in piece {
            let x = inp + t * channels, y = out + t * channels
            var sumSquares: Float = 0
            for c in 0..<channels { sumSquares += x[c] * x[c] }
            let r = 1 / (sumSquares / Float(channels) + eps).squareRoot()
            rstd[t] = r
            for c in 0..<channels { y[c] = (x[c] * r) * (weightOffset + weight[c]) }
        }
    }
}

/// y = w ⊙ x · r, r = (mean x² + eps)^(-1/2) (w = offset + weight):
/// dx = r · (w ⊙ dy) − r³/C · x · Σ(w ⊙ dy ⊙ x);  dweight += dy ⊙ x · r (nil: a frozen weight).
public func rmsnormBackward(dinp: FloatPtr, dweight: FloatPtr?, dout: ConstFloatPtr, inp: ConstFloatPtr,
                            weight: ConstFloatPtr, rstd: ConstFloatPtr, rows: Int, channels: Int, weightOffset: Float = 0) {
    for t in 0..<rows {
        let x = inp + t * channels, dy = dout + t * channels, dx = dinp + t * channels
        let r = rstd[t]
        var dot: Float = 0
        for c in 0..<channels { dot += (weightOffset + weight[c]) * dy[c] * x[c] }
        let k = r * r * r * dot / Float(channels)
        if let dweight {
            for c in 0..<channels {
                dx[c] += r * (weightOffset + weight[c]) * dy[c] - k * x[c]
                dweight[c] += dy[c] * x[c] * r
            }
        } else {
            for c in 0..<channels { dx[c] += r * (weightOffset + weight[c]) * dy[c] - k * x[c] }
        }
    }
}
