import Foundation

// nn.Linear: weights stored as torch stores them, (out features, in features).

/// out (rows, outF) = inp (rows, inF) · weightᵀ + bias.
public func matmulForward(out: FloatPtr, inp: ConstFloatPtr, weight: ConstFloatPtr, bias: ConstFloatPtr?,
                          rows: Int, inFeatures: Int, outFeatures: Int, matmul: any MatmulBackend) {
    matmul.gemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
                a: inp, lda: inFeatures, b: weight, ldb: inFeatures, beta: 0, c: out, ldc: outFeatures)
    if let bias {
        for r in 0..<rows { addInPlace(out + r * outFeatures, bias, count: outFeatures) }
    }
}

/// dinp (+)= dout · weight; dweight += doutᵀ · inp; dbias += Σ_rows dout.
/// `accumulateInput: false` overwrites dinp (the first of several products that feed one input).
/// A frozen linear passes no dweight and no dbias: its weight-gradient product is skipped.
public func matmulBackward(dinp: FloatPtr?, dweight: FloatPtr?, dbias: FloatPtr?,
                           dout: ConstFloatPtr, inp: ConstFloatPtr, weight: ConstFloatPtr,
                           rows: Int, inFeatures: Int, outFeatures: Int, accumulateInput: Bool,
                           matmul: any MatmulBackend) {
    if let dinp {
        matmul.gemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures,
                    a: dout, lda: outFeatures, b: weight, ldb: inFeatures, beta: accumulateInput ? 1 : 0,
                    c: dinp, ldc: inFeatures)
    }
    if let dweight {
        matmul.gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows,
                    a: dout, lda: outFeatures, b: inp, ldb: inFeatures, beta: 1, c: dweight, ldc: inFeatures)
    }
    if let dbias {
        for r in 0..<rows { addInPlace(dbias, dout + r * outFeatures, count: outFeatures) }
    }
}
