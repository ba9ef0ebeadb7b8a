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
    /// Runs `body`, during which the values of the operands stored at `a` and at `b` (either may be
    /// nil) do not change: a backend that converts its operands may convert such an operand once for
    /// all of body's products that read it at that address in the same stored shape (q, k and v
    /// projected from one normed input; an output gradient that feeds both dX and dW).
    func holdingOperands(_ a: ConstFloatPtr?, _ b: ConstFloatPtr?, _ body: () -> Void)
    /// `batch.groups × batch.perGroup` products of one shape, item (g, j) reading A, B and C at
    /// their base + g · strides.group + j · strides.item. An item stride of 0 in A or B shares one
    /// operand across a group (attention's key and value heads across their query heads); in C it
    /// sums a group's items into one result (C = beta · C + Σ_j alpha · op(A_j) op(B_j), the items
    /// added in order), as the gradients of a shared key/value head sum over its query heads. The
    /// C results of different items or groups do not overlap. A backend may run the batch as one
    /// call; the default runs the items in order.
    func gemm(batch: GemmBatch, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: ConstFloatPtr, lda: Int, aStrides: BatchStrides, b: ConstFloatPtr, ldb: Int, bStrides: BatchStrides,
              beta: Float, c: FloatPtr, ldc: Int, cStrides: BatchStrides)
}

/// How many products a batched gemm runs: `groups` of `perGroup` each.
public struct GemmBatch: Hashable, Sendable {
    public let groups: Int, perGroup: Int
    public init(groups: Int, perGroup: Int) { self.groups = groups; self.perGroup = perGroup }
    public var count: Int { groups * perGroup }
}

/// Where item (g, j) of a batch finds an operand, in floats from its base: g · group + j · item.
public struct BatchStrides: Hashable, Sendable {
    public let group: Int, item: Int
    public init(group: Int, item: Int) { self.group = group; self.item = item }
    @inline(__always) func offset(_ g: Int, _ j: Int) -> Int { g * group + j * item }
}

extension MatmulBackend {
    public func weightsAreFixed(_ buffer: UnsafeBufferPointer<Float>) {}

    public func gemm(batch: GemmBatch, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: ConstFloatPtr, lda: Int, aStrides: BatchStrides, b: ConstFloatPtr, ldb: Int, bStrides: BatchStrides,
                     beta: Float, c: FloatPtr, ldc: Int, cStrides: BatchStrides) {
        loopGemm(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, aStrides: aStrides,
                 b: b, ldb: ldb, bStrides: bStrides, beta: beta, c: c, ldc: ldc, cStrides: cStrides)
    }

    /// A batch as one `gemm` per item, in order (a summed C: the first item with beta, the rest added).
    @inline(__always)
    public func loopGemm(batch: GemmBatch, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                         a: ConstFloatPtr, lda: Int, aStrides: BatchStrides, b: ConstFloatPtr, ldb: Int, bStrides: BatchStrides,
                         beta: Float, c: FloatPtr, ldc: Int, cStrides: BatchStrides) {
        let sums = cStrides.item == 0
        for g in 0..<batch.groups {
            for j in 0..<batch.perGroup {
                gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a + aStrides.offset(g, j), lda: lda,
                     b: b + bStrides.offset(g, j), ldb: ldb, beta: sums && j > 0 ? 1 : beta, c: c + cStrides.offset(g, j), ldc: ldc)
            }
        }
    }

    /// A batch with alpha = 1.
    @inline(__always)
    public func gemm(batch: GemmBatch, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                     a: ConstFloatPtr, lda: Int, aStrides: BatchStrides, b: ConstFloatPtr, ldb: Int, bStrides: BatchStrides,
                     beta: Float, c: FloatPtr, ldc: Int, cStrides: BatchStrides) {
        gemm(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, aStrides: aStrides,
             b: b, ldb: ldb, bStrides: bStrides, beta: beta, c: c, ldc: ldc, cStrides: cStrides)
    }

    /// fp32 products read their operands as they are: nothing to hold.
    public func holdingOperands(_ a: ConstFloatPtr?, _ b: ConstFloatPtr?, _ body: () -> Void) { body() }

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
