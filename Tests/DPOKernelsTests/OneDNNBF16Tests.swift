import DPOSupport
import XCTest
@testable import DPOKernels

/// The bf16 backend against products computed here in double from the same bf16-rounded inputs, and
/// against fp32 for values bf16 holds exactly.
final class OneDNNBF16Tests: XCTestCase {
    private func backend() throws -> OneDNNBF16 {
        if let reason = OneDNNBF16.unavailableReason() { throw XCTSkip(reason) }
        return try OneDNNBF16()
    }

    /// IEEE round to nearest even at bf16's 8 significant bits.
    func testRoundingIsToNearestEven() {
        let values: [Float] = [1, 1 + 1.0 / 256, 1 + 3.0 / 256, 1 + 1.0 / 256 + 1.0 / 4096, -2.5, .infinity, 65504, Float(bitPattern: 0x0020_0000)]
        let expected: [Float] = [1, 1, 1 + 4.0 / 256, 1 + 2.0 / 256, -2.5, .infinity, 65536, Float(bitPattern: 0x0020_0000)]  // a subnormal bf16 holds stays
        var out = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { roundToBF16($0.baseAddress!, rows: 1, cols: values.count, ld: values.count, into: &out) }
        for (i, e) in expected.enumerated() {
            XCTAssertEqual(Float(bitPattern: UInt32(out[i]) << 16), e, "\(values[i])")
        }
        var nan = [UInt16](repeating: 0, count: 1)
        [Float.nan].withUnsafeBufferPointer { roundToBF16($0.baseAddress!, rows: 1, cols: 1, ld: 1, into: &nan) }
        XCTAssertTrue(Float(bitPattern: UInt32(nan[0]) << 16).isNaN)
    }

    /// The CPU-instruction rounding gives the bits of oneDNN's reorder and of `roundToBF16` (except
    /// subnormal inputs, which both CPU paths flush to zero), on a strided matrix whose rows are not a
    /// multiple of the vector width, with ties, NaN, infinities and subnormals among the values.
    func testNativeRoundingEqualsTheReorder() throws {
        let dnnl = try backend()
        guard dnnl.roundsNatively else { throw XCTSkip("this CPU has no avx512_bf16: operands are rounded by oneDNN's reorder only") }
        var rng = SplitMix64(seed: 21)
        let rows = 5, cols = 77, ld = 83
        var x = (0..<(rows * ld)).map { _ in rng.nextGaussian() * 3 }
        let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1 + 1.0 / 256, 1 + 3.0 / 256, Float(bitPattern: 0x0020_0000),
                                 -Float(bitPattern: 0x0000_0001), .greatestFiniteMagnitude, Float(bitPattern: 0x3F80_8000)]
        for (i, v) in specials.enumerated() { x[(i % rows) * ld + (i * 7) % cols] = v }
        var native = [UInt16](repeating: 0xFFFF, count: rows * cols), reorder = native, scalar = native
        x.withUnsafeBufferPointer { p in
            dnnl.round(p.baseAddress!, rows: rows, cols: cols, ld: ld, into: &native)
            dnnl.roundsNatively = false
            dnnl.round(p.baseAddress!, rows: rows, cols: cols, ld: ld, into: &reorder)
            roundToBF16(p.baseAddress!, rows: rows, cols: cols, ld: ld, into: &scalar)
        }
        XCTAssertEqual(native, reorder)
        for i in 0..<(rows * cols) {
            let v = x[(i / cols) * ld + i % cols]
            if v.isNaN {
                XCTAssertTrue(Float(bitPattern: UInt32(native[i]) << 16).isNaN)
            } else if v.isSubnormal {
                XCTAssertEqual(native[i] & 0x7FFF, 0, "a subnormal input flushes to zero")
            } else {
                XCTAssertEqual(native[i], scalar[i], "\(v)")
            }
        }
    }

    private func bf16(_ x: Float) -> Double {
        // Rounding by scaling: the nearest multiple of 2^(e-7) for x in [2^e, 2^(e+1)), ties to even.
        if x == 0 { return 0 }
        let e = Int(floor(log2(Double(abs(x)))))
        let ulp = pow(2.0, Double(e - 7))
        let q = Double(x) / ulp
        return q.rounded(.toNearestOrEven) * ulp
    }

    /// Every transpose combination, alpha, beta, a leading dimension wider than the operand, against
    /// a product in double of the bf16-rounded operands: equal up to fp32 accumulation.
    func testProductsMatchDoubleOfRoundedInputs() throws {
        let dnnl = try backend()
        var rng = SplitMix64(seed: 7)
        for (m, n, k) in [(5, 7, 3), (33, 17, 64), (64, 48, 130)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.125, 1), (1, 0.5)] {
                        let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 1, ldc = n + 2
                        let a = (0..<((transA ? k : m) * lda)).map { _ in Float(rng.nextUniform() * 2 - 1) }
                        let b = (0..<((transB ? n : k) * ldb)).map { _ in Float(rng.nextUniform() * 2 - 1) }
                        var c = (0..<(m * ldc)).map { _ in Float(rng.nextUniform() * 2 - 1) }
                        let c0 = c
                        dnnl.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                  b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
                        var worst = 0.0
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0, size = 0.0
                                for p in 0..<k {
                                    let x = bf16(transA ? a[p * lda + i] : a[i * lda + p])
                                    let y = bf16(transB ? b[j * ldb + p] : b[p * ldb + j])
                                    sum += x * y; size += abs(x * y)
                                }
                                let want = Double(alpha) * sum + Double(beta) * Double(c0[i * ldc + j])
                                worst = max(worst, abs(Double(c[i * ldc + j]) - want) / (size + abs(Double(c0[i * ldc + j])) + 1e-30))
                            }
                            for j in n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding written") }
                        }
                        XCTAssertLessThan(worst, 1e-5, "m \(m) n \(n) k \(k) transA \(transA) transB \(transB) alpha \(alpha) beta \(beta)")
                    }
                }
            }
        }
    }

    /// Small integers are exact in bf16 and their products' sums exact in fp32: the same bits as sgemm.
    func testExactValuesGiveTheFP32Result() throws {
        let dnnl = try backend(), blas = OpenBLASFP32()
        let m = 40, n = 24, k = 96
        let a = (0..<(m * k)).map { Float(($0 * 7) % 13) - 6 }, b = (0..<(k * n)).map { Float(($0 * 5) % 11) - 5 }
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        dnnl.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 0, c: &c1, ldc: n)
        blas.gemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 0, c: &c2, ldc: n)
        XCTAssertEqual(c1, c2)
        XCTAssertTrue(dnnl.kernelNames.count == 1, "\(dnnl.kernelNames)")
    }

    /// Operands in the fixed buffer are converted once; a new call to weightsAreFixed makes the backend
    /// read their new values (a stale copy would give the old product).
    func testFixedWeightsAreReadAgainAfterTheyChange() throws {
        let dnnl = try backend()
        let m = 8, n = 16, k = 32
        let weights = FloatBuffer(count: n * k)
        for i in 0..<(n * k) { weights.pointer[i] = 1 }
        let x = [Float](repeating: 1, count: m * k)
        var c = [Float](repeating: 0, count: m * n)
        func product() -> Float {
            dnnl.gemm(transA: false, transB: true, m: m, n: n, k: k, a: x, lda: k, b: weights.pointer, ldb: k, beta: 0, c: &c, ldc: n)
            return c[0]
        }
        dnnl.weightsAreFixed(UnsafeBufferPointer(start: weights.pointer, count: weights.count))
        XCTAssertEqual(product(), Float(k))
        XCTAssertEqual(product(), Float(k))
        for i in 0..<(n * k) { weights.pointer[i] = 2 }
        dnnl.weightsAreFixed(UnsafeBufferPointer(start: weights.pointer, count: weights.count))
        XCTAssertEqual(product(), Float(2 * k))
    }

    func testACPUWithoutBF16IsNamed() {
        XCTAssertNotNil(OneDNNBF16.unavailableReason(cpuFlags: ["avx512f", "avx2"]))
        XCTAssertNil(OneDNNBF16.unavailableReason(cpuFlags: ["avx512_bf16"]))
        XCTAssertNil(OneDNNBF16.unavailableReason(cpuFlags: ["amx_bf16"]))
    }
}

