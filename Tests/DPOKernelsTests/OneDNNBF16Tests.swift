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

    /// A batch in one primitive, in attention's layouts: query heads interleaved in a row (item
    /// stride = head width, rows a whole token apart), a key head shared by its group (item stride
    /// 0), scores head after head, and a result written into interleaved heads with alpha and beta;
    /// against a product in double of the bf16-rounded operands, item by item.
    func testBatchesMatchDoubleOfRoundedInputs() throws {
        let dnnl = try backend()
        var rng = SplitMix64(seed: 11)
        let kvHeads = 2, group = 3, heads = kvHeads * group, D = 8
        let batch = GemmBatch(groups: kvHeads, perGroup: group)
        enum Result { case strided, dense, summed }
        for (m, n, transB, shared, result, alpha, beta) in [(5, 7, true, true, Result.strided, Float(0.35), Float(0)),
                                                           (9, 4, false, true, .strided, 1, 1), (6, 3, true, false, .strided, 1, 0.5),
                                                           (16, 32, true, true, .dense, 0.125, 0), (7, 5, false, true, .dense, 1, 1),
                                                           (6, 8, false, false, .summed, 1, 1), (5, 3, true, true, .summed, 0.5, 0.25)] {
            // A: m rows of all heads' D columns; B: n (transposed) or D rows of kvHeads × D columns;
            // C: interleaved heads (strided), head after head (dense: one oneDNN call, no copy), or
            // one result per group that sums its items (a key/value head's gradient).
            let lda = heads * D, ldb = transB ? kvHeads * D : n * heads
            let ldc = result == .dense ? n : result == .summed ? n * kvHeads + 2 : n * heads + 1
            let aStrides = BatchStrides(group: group * D, item: D)
            let bStrides = shared ? BatchStrides(group: transB ? D : n, item: 0) : BatchStrides(group: group * n, item: n)
            let cStrides = switch result {
            case .strided: BatchStrides(group: group * n, item: n)
            case .dense: BatchStrides(group: group * m * n, item: m * n)
            case .summed: BatchStrides(group: n, item: 0)
            }
            let bRows = transB ? n : D
            let a = (0..<(m * lda)).map { _ in Float(rng.nextUniform() * 2 - 1) }
            let b = (0..<(bRows * ldb + D * heads)).map { _ in Float(rng.nextUniform() * 2 - 1) }
            var c = (0..<((result == .dense ? heads : 1) * m * ldc)).map { _ in Float(rng.nextUniform() * 2 - 1) }
            let c0 = c
            dnnl.gemm(batch: batch, transA: false, transB: transB, m: m, n: n, k: D, alpha: alpha, a: a, lda: lda,
                      aStrides: aStrides, b: b, ldb: ldb, bStrides: bStrides, beta: beta, c: &c, ldc: ldc, cStrides: cStrides)
            // Each result in double: beta · C + alpha · the sum of its items' products, and the size of its terms.
            var want = [Int: (value: Double, size: Double)]()
            for g in 0..<kvHeads {
                for j in 0..<group {
                    let ao = aStrides.offset(g, j), bo = bStrides.offset(g, j), co = cStrides.offset(g, j)
                    for i in 0..<m {
                        for col in 0..<n {
                            var sum = 0.0, size = 0.0
                            for p in 0..<D {
                                let x = bf16(a[ao + i * lda + p]), y = bf16(transB ? b[bo + col * ldb + p] : b[bo + p * ldb + col])
                                sum += x * y; size += abs(x * y)
                            }
                            let at = co + i * ldc + col, old = Double(c0[at])
                            let start = want[at] ?? (Double(beta) * old, abs(old))
                            want[at] = (start.value + Double(alpha) * sum, start.size + size)
                        }
                    }
                }
            }
            var worst = 0.0
            for (at, w) in want { worst = max(worst, abs(Double(c[at]) - w.value) / (w.size + 1e-30)) }
            for i in 0..<c.count where want[i] == nil { XCTAssertEqual(c[i], c0[i], "outside the batch's items") }
            XCTAssertLessThan(worst, 1e-5, "m \(m) n \(n) transB \(transB) shared \(shared) \(result)")
        }
        XCTAssertTrue(dnnl.kernelNames.allSatisfy { !$0.hasPrefix("ref") }, "a reference kernel ran: \(dnnl.kernelNames)")
    }

    /// Attention's batched products (every head of a block in one primitive, key and value heads
    /// broadcast over their groups) against the same attention run one product per head through the
    /// same backend: prefixes, a prefix with no own rows, blocks that split sequences, a window.
    func testBatchedAttentionMatchesOneProductPerHead() throws {
        let dnnl = try backend(), looped = OneProductAtATime(inner: dnnl)
        var rng = SplitMix64(seed: 5)
        let H = 6, Hkv = 2, D = 16
        let starts = [0, 9, 16, 20, 24], lengths = [9, 7, 4, 4, 0]
        let prefixStarts = [0, 0, 0, 20, 20], prefixLengths = [0, 5, 5, 0, 2]
        let T = 24, longest = 12
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.nextUniform() * 2 - 1) } }
        let q = randoms(T * H * D), k = randoms(T * Hkv * D), v = randoms(T * Hkv * D), g = randoms(T * H * D)
        for window in [nil, 4] {
            let shape = AttentionShape(heads: H, kvHeads: Hkv, headDim: D, blockRows: 3, window: window)
            func run(_ matmul: any MatmulBackend) -> [[Float]] {
                var out = [Float](repeating: 0, count: T * H * D), lse = [Float](repeating: 0, count: T * H)
                var scratch = [Float](repeating: .nan, count: shape.scratchCount(longest: longest))
                attentionForward(out: &out, lse: &lse, q: q, k: k, v: v, starts: starts, lengths: lengths,
                                 prefixStarts: prefixStarts, prefixLengths: prefixLengths, sequences: 5, shape: shape,
                                 scratch: &scratch, matmul: matmul)
                var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
                attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: g, q: q, k: k, v: v, out: out, lse: lse, starts: starts,
                                  lengths: lengths, prefixStarts: prefixStarts, prefixLengths: prefixLengths, sequences: 5,
                                  shape: shape, scratch: &scratch, longest: longest, matmul: matmul)
                return [out, lse, dq, dk, dv]
            }
            let batched = run(dnnl), single = run(looped)
            for (name, (x, y)) in zip(["out", "lse", "dq", "dk", "dv"], zip(batched, single)) {
                let size = y.map { abs($0) }.max()!, worst = zip(x, y).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-6 * size, "\(name), window \(window.map(String.init) ?? "none")")
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

    /// A held operand is rounded once for every product of the hold that reads it in the same stored
    /// shape (a transposed read of the same storage included), with the bits of rounding it each time;
    /// an outer hold of the same address keeps its copy through an inner one; after the hold ends a
    /// changed operand is read again (a stale copy would give the old product).
    func testAHeldOperandIsRoundedOnceAndReadAgainAfterItsHold() throws {
        var rng = SplitMix64(seed: 5)
        let m = 24, n = 40, k = 72
        let x = FloatBuffer(count: m * k), w1 = (0..<(n * k)).map { _ in rng.nextGaussian() }
        let w2 = (0..<(n * k)).map { _ in rng.nextGaussian() }, g = (0..<(m * n)).map { _ in rng.nextGaussian() }
        for i in 0..<(m * k) { x.pointer[i] = rng.nextGaussian() }
        /// x · w1ᵀ, x · w2ᵀ and gᵀ · x (x read as A twice, then transposed as B).
        func products(_ dnnl: OneDNNBF16, held: Bool) -> [[Float]] {
            var c1 = [Float](repeating: 0, count: m * n), c2 = c1, c3 = [Float](repeating: 0, count: n * k)
            let body = {
                dnnl.gemm(transA: false, transB: true, m: m, n: n, k: k, a: x.pointer, lda: k, b: w1, ldb: k, beta: 0, c: &c1, ldc: n)
                dnnl.gemm(transA: false, transB: true, m: m, n: n, k: k, a: x.pointer, lda: k, b: w2, ldb: k, beta: 0, c: &c2, ldc: n)
                dnnl.gemm(transA: true, transB: false, m: n, n: k, k: m, a: g, lda: n, b: x.pointer, ldb: k, beta: 0, c: &c3, ldc: k)
            }
            if held { dnnl.holdingOperands(x.pointer, nil, body) } else { body() }
            return [c1, c2, c3]
        }
        let plain = try backend(), holding = try backend()
        let expected = products(plain, held: false)
        XCTAssertEqual(plain.roundedValues, 3 * m * k + 2 * n * k + m * n)
        XCTAssertEqual(products(holding, held: true), expected)
        XCTAssertEqual(holding.roundedValues, m * k + 2 * n * k + m * n, "x rounded once")

        // Nested holds of the same address: the outer one's copy serves the inner products.
        let before = holding.roundedValues
        holding.holdingOperands(x.pointer, nil) { XCTAssertEqual(products(holding, held: true), expected) }
        XCTAssertEqual(holding.roundedValues - before, m * k + 2 * n * k + m * n)

        for i in 0..<(m * k) { x.pointer[i] *= -2 }
        let changed = products(try backend(), held: false)
        XCTAssertNotEqual(changed, expected)
        XCTAssertEqual(products(holding, held: true), changed, "a new hold reads the changed operand")
    }

    func testACPUWithoutBF16IsNamed() {
        XCTAssertNotNil(OneDNNBF16.unavailableReason(cpuFlags: ["avx512f", "avx2"]))
        XCTAssertNil(OneDNNBF16.unavailableReason(cpuFlags: ["avx512_bf16"]))
        XCTAssertNil(OneDNNBF16.unavailableReason(cpuFlags: ["amx_bf16"]))
    }
}

/// A backend that runs every batch one product at a time (the protocol's default), through another.
private struct OneProductAtATime: MatmulBackend, @unchecked Sendable {
    let inner: OneDNNBF16
    var name: String { inner.name }
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: ConstFloatPtr, lda: Int, b: ConstFloatPtr, ldb: Int, beta: Float, c: FloatPtr, ldc: Int) {
        inner.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc)
    }
}
