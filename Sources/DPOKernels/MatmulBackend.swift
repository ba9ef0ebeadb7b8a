import COpenBLAS
import Foundation

/// The matrix products of the model: C = alpha · op(A) · op(B) + beta · C, row-major. Every product
/// the kernels compute goes through the backend they are given, and a model holds its own, so
/// another precision (bf16 through oneDNN, say) is a second conformance, not an edit at each call.
public protocol MatmulBackend: Sendable {
    /// Names the backend in benchmark output.
    var name: String { get }
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: ConstFloatPtr, lda: Int, b: ConstFloatPtr, ldb: Int, beta: Float, c: FloatPtr, ldc: Int)
    /// Tells the backend that the values in `buffer` (a model's weights) stay as they are until the
    /// next call, so that a backend which converts its operands may convert those once.
    func weightsAreFixed(_ buffer: UnsafeBufferPointer<Float>)
}

extension MatmulBackend {
    public func weightsAreFixed(_ buffer: UnsafeBufferPointer<Float>) {}

    /// alpha = 1, the common case.
    @inline(__always)
    public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     a: ConstFloatPtr, lda: Int, b: ConstFloatPtr, ldb: Int, beta: Float, c: FloatPtr, ldc: Int) {
        gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
             beta: beta, c: c, ldc: ldc)
    }
}

/// fp32 products by OpenBLAS's cblas_sgemm.
public struct OpenBLASFP32: MatmulBackend {
    public init() {}
    public var name: String { "OpenBLAS fp32 (\(BLASCore.name) kernels)" }

    @inline(__always)
    public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: ConstFloatPtr, lda: Int, b: ConstFloatPtr, ldb: Int, beta: Float, c: FloatPtr, ldc: Int) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// Sets the threads of this process's matrix products (OpenBLAS's, and oneDNN's OpenMP threads for
/// bf16) and of its element-wise kernels (`KernelThreads`).
public func setBLASThreads(_ n: Int) {
    openblas_set_num_threads(Int32(n))
    KernelThreads.set(n)
    OneDNNBF16.setThreads(n)
}
