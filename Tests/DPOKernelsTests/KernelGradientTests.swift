import XCTest
@testable import DPOKernels
@testable import DPOSupport

/// Each kernel against a naive float64 implementation written here: the forward values, and the
/// backward against central finite differences of the float64 forward of the scalar Σ w ⊙ out.
final class KernelGradientTests: XCTestCase {
    var rng = SplitMix64(seed: 1234)
    let blas = OpenBLASFP32()

    func randoms(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in scale * rng.nextGaussian() } }

    /// Central differences of `f` at `x` (float64), one coordinate at a time.
    func numericGradient(_ x: [Double], h: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
        var x = x
        return (0..<x.count).map { i in
            let saved = x[i]
            x[i] = saved + h; let up = f(x)
            x[i] = saved - h; let down = f(x)
            x[i] = saved
            return (up - down) / (2 * h)
        }
    }

    /// max |a − b| / max(‖b‖∞, 1e-3) ≤ tol; prints the worst entry.
    /// Worst |a − b| over the largest |b|, which is at least `floor`: the size of the terms whose
    /// float32 rounding the result carries, where the exact result is (nearly) zero.
    func assertClose(_ a: [Float], _ b: [Double], tol: Double, _ what: String, floor: Double = 1e-3, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, line: line)
        var worst = 0.0, at = 0
        for i in 0..<min(a.count, b.count) where abs(Double(a[i]) - b[i]) > worst { worst = abs(Double(a[i]) - b[i]); at = i }
        let scale = max(b.map(abs).max() ?? 0, floor)
        XCTAssertLessThanOrEqual(worst / scale, tol, "\(what): worst |diff| \(worst) at \(at) (ours \(a[at]), reference \(b[at])), scale \(scale)", line: line)
    }

    // MARK: naive float64 references

    static func linear(_ x: [Double], _ w: [Double], _ b: [Double]?, rows: Int, inF: Int, outF: Int) -> [Double] {
        var out = [Double](repeating: 0, count: rows * outF)
        for r in 0..<rows { for o in 0..<outF {
            var s = b?[o] ?? 0
            for i in 0..<inF { s += x[r * inF + i] * w[o * inF + i] }
            out[r * outF + o] = s
        } }
        return out
    }

    /// `offset` 1: Gemma 3's (1 + w).
    static func rmsnorm(_ x: [Double], _ w: [Double], eps: Double, rows: Int, C: Int, offset: Double = 0) -> [Double] {
        var out = x
        for r in 0..<rows {
            var ss = 0.0
            for c in 0..<C { ss += x[r * C + c] * x[r * C + c] }
            let rs = 1 / (ss / Double(C) + eps).squareRoot()
            for c in 0..<C { out[r * C + c] = (offset + w[c]) * x[r * C + c] * rs }
        }
        return out
    }

    /// RoPE on the first `rotary` dimensions of each head (all when nil), frequencies over `rotary`.
    static func rope(_ x: [Double], positions: [Int], heads: Int, D: Int, theta: Double, rotary: Int? = nil) -> [Double] {
        var out = x
        let R = rotary ?? D, half = R / 2
        for (t, p) in positions.enumerated() { for h in 0..<heads { for i in 0..<half {
            let angle = Double(p) / pow(theta, Double(2 * i) / Double(R))
            let base = t * heads * D + h * D
            let a = x[base + i], b = x[base + i + half]
            out[base + i] = a * cos(angle) - b * sin(angle)
            out[base + i + half] = b * cos(angle) + a * sin(angle)
        } } }
        return out
    }

    static func attention(q: [Double], k: [Double], v: [Double], starts: [Int], lengths: [Int], H: Int, Hkv: Int, D: Int,
                          scale: Double? = nil) -> [Double] {
        var out = [Double](repeating: 0, count: q.count)
        let scale = scale ?? 1 / Double(D).squareRoot()
        for (s0, L) in zip(starts, lengths) { for h in 0..<H {
            let kh = h / (H / Hkv)
            for i in 0..<L {
                var scores = [Double](repeating: 0, count: i + 1)
                for j in 0...i {
                    var d = 0.0
                    for e in 0..<D { d += q[(s0 + i) * H * D + h * D + e] * k[(s0 + j) * Hkv * D + kh * D + e] }
                    scores[j] = d * scale
                }
                let m = scores.max()!
                let ex = scores.map { exp($0 - m) }
                let z = ex.reduce(0, +)
                for j in 0...i { for e in 0..<D {
                    out[(s0 + i) * H * D + h * D + e] += ex[j] / z * v[(s0 + j) * Hkv * D + kh * D + e]
                } }
            }
        } }
        return out
    }

    // MARK: tests

    func testLinearForwardAndBackward() {
        let rows = 5, inF = 7, outF = 6
        let x = randoms(rows * inF), w = randoms(outF * inF), b = randoms(outF), g = randoms(rows * outF)
        var out = [Float](repeating: 0, count: rows * outF)
        var dx = [Float](repeating: 0, count: rows * inF), dw = [Float](repeating: 0, count: outF * inF), db = [Float](repeating: 0, count: outF)
        matmulForward(out: &out, inp: x, weight: w, bias: b, rows: rows, inFeatures: inF, outFeatures: outF, matmul: blas)
        matmulBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: g, inp: x, weight: w, rows: rows, inFeatures: inF, outFeatures: outF, accumulateInput: false, matmul: blas)
        let xd = x.map(Double.init), wd = w.map(Double.init), bd = b.map(Double.init), gd = g.map(Double.init)
        assertClose(out, Self.linear(xd, wd, bd, rows: rows, inF: inF, outF: outF), tol: 1e-6, "linear forward")
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            zip(Self.linear(x, w, b, rows: rows, inF: inF, outF: outF), gd).map(*).reduce(0, +)
        }
        assertClose(dx, numericGradient(xd) { loss($0, wd, bd) }, tol: 1e-5, "d input")
        assertClose(dw, numericGradient(wd) { loss(xd, $0, bd) }, tol: 1e-5, "d weight")
        assertClose(db, numericGradient(bd) { loss(xd, wd, $0) }, tol: 1e-5, "d bias")
    }

    /// A frozen linear or norm (no weight gradient given) gives the same input gradient, bit for bit,
    /// and writes nothing else.
    func testFrozenWeightsGiveTheSameInputGradient() {
        let rows = 5, inF = 7, outF = 6
        let x = randoms(rows * inF), w = randoms(outF * inF), g = randoms(rows * outF)
        var dx = [Float](repeating: 0, count: rows * inF), frozenDx = dx
        var dw = [Float](repeating: 0, count: outF * inF)
        matmulBackward(dinp: &dx, dweight: &dw, dbias: nil, dout: g, inp: x, weight: w, rows: rows, inFeatures: inF,
                       outFeatures: outF, accumulateInput: false, matmul: blas)
        matmulBackward(dinp: &frozenDx, dweight: nil, dbias: nil, dout: g, inp: x, weight: w, rows: rows, inFeatures: inF,
                       outFeatures: outF, accumulateInput: false, matmul: blas)
        XCTAssertEqual(frozenDx, dx)
        XCTAssertNotEqual(dw, [Float](repeating: 0, count: outF * inF), "the trainable linear has a weight gradient")

        let C = 9, nx = randoms(rows * C), nw = randoms(C), ng = randoms(rows * C)
        var out = [Float](repeating: 0, count: rows * C), rstd = [Float](repeating: 0, count: rows)
        rmsnormForward(out: &out, rstd: &rstd, inp: nx, weight: nw, eps: 1e-5, rows: rows, channels: C)
        var ndx = [Float](repeating: 0, count: rows * C), frozenNdx = ndx, ndw = [Float](repeating: 0, count: C)
        rmsnormBackward(dinp: &ndx, dweight: &ndw, dout: ng, inp: nx, weight: nw, rstd: rstd, rows: rows, channels: C)
        rmsnormBackward(dinp: &frozenNdx, dweight: nil, dout: ng, inp: nx, weight: nw, rstd: rstd, rows: rows, channels: C)
        XCTAssertEqual(frozenNdx, ndx)
    }

    func testRMSNormForwardAndBackward() { checkRMSNorm(offset: 0) }

    /// Gemma 3's norm: (1 + w) · x · r, with weights near 0 as Gemma stores them.
    func testRMSNormWithUnitOffsetForwardAndBackward() { checkRMSNorm(offset: 1, weightScale: 0.3) }

    func checkRMSNorm(offset: Float, weightScale: Float = 1, line: UInt = #line) {
        let rows = 4, C = 9
        let x = randoms(rows * C), w = randoms(C, scale: weightScale), g = randoms(rows * C)
        var out = [Float](repeating: 0, count: rows * C), rstd = [Float](repeating: 0, count: rows)
        var dx = [Float](repeating: 0, count: rows * C), dw = [Float](repeating: 0, count: C)
        rmsnormForward(out: &out, rstd: &rstd, inp: x, weight: w, eps: 1e-5, rows: rows, channels: C, weightOffset: offset)
        rmsnormBackward(dinp: &dx, dweight: &dw, dout: g, inp: x, weight: w, rstd: rstd, rows: rows, channels: C, weightOffset: offset)
        let xd = x.map(Double.init), wd = w.map(Double.init), gd = g.map(Double.init), o = Double(offset)
        assertClose(out, Self.rmsnorm(xd, wd, eps: 1e-5, rows: rows, C: C, offset: o), tol: 1e-6, "rmsnorm forward", line: line)
        func loss(_ x: [Double], _ w: [Double]) -> Double {
            zip(Self.rmsnorm(x, w, eps: 1e-5, rows: rows, C: C, offset: o), gd).map(*).reduce(0, +)
        }
        assertClose(dx, numericGradient(xd) { loss($0, wd) }, tol: 1e-5, "rmsnorm d input", line: line)
        assertClose(dw, numericGradient(wd) { loss(xd, $0) }, tol: 1e-5, "rmsnorm d weight", line: line)
    }

    func testRopeForwardAndInverseIsBackward() {
        let T = 6, H = 2, D = 8
        let positions: [Int32] = [0, 1, 2, 0, 1, 5]
        let table = RopeTable(headDim: D, theta: 10000, scaling: .none, positions: 8)
        let x = randoms(T * H * D), g = randoms(T * H * D)
        var y = x, dy = g
        ropeApply(&y, positions: positions, cos: table.cos, sin: table.sin, rows: T, heads: H, headDim: D, inverse: false)
        ropeApply(&dy, positions: positions, cos: table.cos, sin: table.sin, rows: T, heads: H, headDim: D, inverse: true)
        let xd = x.map(Double.init), gd = g.map(Double.init), pos = positions.map(Int.init)
        assertClose(y, Self.rope(xd, positions: pos, heads: H, D: D, theta: 10000), tol: 1e-6, "rope forward")
        let numeric = numericGradient(xd) { zip(Self.rope($0, positions: pos, heads: H, D: D, theta: 10000), gd).map(*).reduce(0, +) }
        assertClose(dy, numeric, tol: 1e-5, "rope backward")
    }

    /// Phi-3's partial rotary: the first R of each head's D dimensions rotate (pairs (i, i + R/2),
    /// frequencies over R), the last D − R pass through in both directions.
    func testPartialRopeRotatesTheLeadingDimensionsOnly() {
        let T = 5, H = 3, D = 8, R = 6
        let positions: [Int32] = [0, 3, 1, 2, 7]
        let table = RopeTable(headDim: R, theta: 10000, scaling: .none, positions: 8)
        let x = randoms(T * H * D), g = randoms(T * H * D)
        var y = x, dy = g
        ropeApply(&y, positions: positions, cos: table.cos, sin: table.sin, rows: T, heads: H, headDim: D, rotaryDim: R, inverse: false)
        ropeApply(&dy, positions: positions, cos: table.cos, sin: table.sin, rows: T, heads: H, headDim: D, rotaryDim: R, inverse: true)
        let xd = x.map(Double.init), gd = g.map(Double.init), pos = positions.map(Int.init)
        let expected = Self.rope(xd, positions: pos, heads: H, D: D, theta: 10000, rotary: R)
        assertClose(y, expected, tol: 1e-6, "partial rope forward")
        for t in 0..<T { for h in 0..<H { for e in R..<D {
            let i = (t * H + h) * D + e
            XCTAssertEqual(y[i], x[i], "dimension \(e) of head \(h) passes through")
            XCTAssertEqual(dy[i], g[i])
        } } }
        XCTAssertNotEqual(y[(1 * H + 0) * D + 1], x[(1 * H + 0) * D + 1], "a leading dimension rotates")
        let numeric = numericGradient(xd) { zip(Self.rope($0, positions: pos, heads: H, D: D, theta: 10000, rotary: R), gd).map(*).reduce(0, +) }
        assertClose(dy, numeric, tol: 1e-5, "partial rope backward")
    }

    func testSwiGLUForwardAndBackward() {
        checkGatedActivation("swiglu", forward: swigluForward, backward: swigluBackward) { $0 / (1 + exp(-$0)) }
    }

    /// GeGLU with transformers' gelu_pytorch_tanh (Gemma 3's MLP), against its formula in float64.
    func testGeGLUTanhForwardAndBackward() {
        checkGatedActivation("geglu", forward: gegluTanhForward, backward: gegluTanhBackward) {
            0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0)))
        }
    }

    /// h = act(gate) ⊙ up: the forward against `act` in float64, dgate and dup against central differences.
    func checkGatedActivation(_ what: String, forward: (FloatPtr, ConstFloatPtr, ConstFloatPtr, Int) -> Void,
                              backward: (FloatPtr, FloatPtr, ConstFloatPtr, ConstFloatPtr, ConstFloatPtr, Int) -> Void,
                              line: UInt = #line, _ act: @escaping (Double) -> Double) {
        let n = 20
        let gate = randoms(n, scale: 3), up = randoms(n), g = randoms(n)
        var out = [Float](repeating: 0, count: n), dgate = out, dup = out
        forward(&out, gate, up, n)
        backward(&dgate, &dup, g, gate, up, n)
        let gd = gate.map(Double.init), ud = up.map(Double.init), wd = g.map(Double.init)
        func f(_ gt: [Double], _ u: [Double]) -> [Double] { zip(gt, u).map { act($0) * $1 } }
        assertClose(out, f(gd, ud), tol: 1e-6, what + " forward", line: line)
        assertClose(dgate, numericGradient(gd) { zip(f($0, ud), wd).map(*).reduce(0, +) }, tol: 1e-5, what + " d gate", line: line)
        assertClose(dup, numericGradient(ud) { zip(f(gd, $0), wd).map(*).reduce(0, +) }, tol: 1e-5, what + " d up", line: line)
    }

    /// Packed sequences of different lengths, grouped-query heads, and a block size smaller than the
    /// sequences so the blocked causal loop is exercised across block edges.
    func testAttentionForwardAndBackward() { checkAttention(scale: nil) }

    /// A scale of the model's own (Gemma 3's query_pre_attn_scalar^-0.5) instead of head_dim^-0.5.
    func testAttentionWithItsOwnScale() { checkAttention(scale: 0.7) }

    func checkAttention(scale: Float?, line: UInt = #line) {
        let H = 4, Hkv = 2, D = 6
        let starts = [0, 7, 9], lengths = [7, 2, 11]
        let T = 20
        let shape = AttentionShape(heads: H, kvHeads: Hkv, headDim: D, blockRows: 3, scale: scale)
        let q = randoms(T * H * D), k = randoms(T * Hkv * D), v = randoms(T * Hkv * D), g = randoms(T * H * D)
        var out = [Float](repeating: 0, count: T * H * D), lse = [Float](repeating: 0, count: T * H)
        var scratch = [Float](repeating: 0, count: shape.scratchCount(longest: 11))
        attentionForward(out: &out, lse: &lse, q: q, k: k, v: v, starts: starts, lengths: lengths, sequences: 3, shape: shape, scratch: &scratch, matmul: blas)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: g, q: q, k: k, v: v, out: out, lse: lse, starts: starts, lengths: lengths,
                          sequences: 3, shape: shape, scratch: &scratch, longest: 11, matmul: blas)
        let qd = q.map(Double.init), kd = k.map(Double.init), vd = v.map(Double.init), gd = g.map(Double.init)
        func att(_ q: [Double], _ k: [Double], _ v: [Double]) -> [Double] {
            Self.attention(q: q, k: k, v: v, starts: starts, lengths: lengths, H: H, Hkv: Hkv, D: D, scale: scale.map(Double.init))
        }
        assertClose(out, att(qd, kd, vd), tol: 1e-5, "attention forward", line: line)
        func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double { zip(att(q, k, v), gd).map(*).reduce(0, +) }
        assertClose(dq, numericGradient(qd) { loss($0, kd, vd) }, tol: 1e-4, "attention dq", line: line)
        assertClose(dk, numericGradient(kd) { loss(qd, $0, vd) }, tol: 1e-4, "attention dk", line: line)
        assertClose(dv, numericGradient(vd) { loss(qd, kd, $0) }, tol: 1e-4, "attention dv", line: line)
    }

    /// Attention with an explicit mask: row i of sequence s (own tokens at `starts[s]`, prefix rows at
    /// `prefixStarts[s]`) sees every prefix row and its own rows 0...i, nothing else.
    static func maskedAttention(q: [Double], k: [Double], v: [Double], starts: [Int], lengths: [Int],
                                prefixStarts: [Int], prefixLengths: [Int], H: Int, Hkv: Int, D: Int,
                                window: Int? = nil) -> [Double] {
        var out = [Double](repeating: 0, count: q.count)
        let scale = 1 / Double(D).squareRoot()
        for s in 0..<starts.count { for h in 0..<H {
            let kh = h / (H / Hkv)
            for i in 0..<lengths[s] {
                let row = starts[s] + i
                // Key rows with their positions (the prefix is 0..<prefixLength, own row r is prefixLength + r),
                // those inside the window: position > the query's position − window.
                let pre = prefixLengths[s], position = pre + i
                let keys = (Array(prefixStarts[s]..<(prefixStarts[s] + pre)).enumerated().map { ($1, $0) }
                            + Array(starts[s]...row).map { ($0, pre + $0 - starts[s]) })
                    .filter { window == nil || $0.1 > position - window! }.map(\.0)
                let scores = keys.map { j -> Double in
                    var d = 0.0
                    for e in 0..<D { d += q[row * H * D + h * D + e] * k[j * Hkv * D + kh * D + e] }
                    return d * scale
                }
                let m = scores.max()!
                let ex = scores.map { exp($0 - m) }
                let z = ex.reduce(0, +)
                for (n, j) in keys.enumerated() { for e in 0..<D {
                    out[row * H * D + h * D + e] += ex[n] / z * v[j * Hkv * D + kh * D + e]
                } }
            }
        } }
        return out
    }

    /// Sequences that attend to a prefix of rows elsewhere in the batch, as a DPO pair's rejected
    /// completion attends to the chosen sequence's prompt: a prefix longer and shorter than a block,
    /// two sequences sharing one prefix (its dk and dv add up both), a sequence with a prefix and no
    /// own tokens, and sequences without one in the same batch.
    func testAttentionWithAPrefixMatchesAnExplicitMask() {
        checkPrefixAttention(window: nil)
    }

    /// The same batch through sliding windows (Mistral's mask: a query at position p sees keys at
    /// p − window + 1 ... p) of one key, shorter than a prefix, and longer than every sequence; a
    /// window counts positions through the prefix into the sequence's own rows.
    func testSlidingWindowAttentionMatchesAnExplicitMask() {
        for window in [1, 2, 4, 6, 40] { checkPrefixAttention(window: window) }
        // A window longer than every sequence is full causal attention, with the same bits.
        let H = 2, Hkv = 1, D = 4, T = 10
        let q = randoms(T * H * D), k = randoms(T * Hkv * D), v = randoms(T * Hkv * D)
        var full = [Float](repeating: 0, count: T * H * D), wide = full, lse = [Float](repeating: 0, count: T * H), lse2 = lse
        let shape = AttentionShape(heads: H, kvHeads: Hkv, headDim: D, blockRows: 4)
        var scratch = [Float](repeating: .nan, count: shape.scratchCount(longest: T))
        attentionForward(out: &full, lse: &lse, q: q, k: k, v: v, starts: [0], lengths: [T], sequences: 1,
                         shape: shape, scratch: &scratch, matmul: blas)
        attentionForward(out: &wide, lse: &lse2, q: q, k: k, v: v, starts: [0], lengths: [T], sequences: 1,
                         shape: AttentionShape(heads: H, kvHeads: Hkv, headDim: D, blockRows: 4, window: T),
                         scratch: &scratch, matmul: blas)
        XCTAssertEqual(full, wide)
        XCTAssertEqual(lse, lse2)
    }

    func checkPrefixAttention(window: Int?) {
        let H = 4, Hkv = 2, D = 6, label = "window \(window.map(String.init) ?? "none")"
        // 0..<9: a plain sequence whose rows 0..<5 are the prefix of the sequences at 9 and 16;
        // 16..<20 also has a prefix of 5 rows; 20..<24 plain; the last has prefix 20..<22 and 0 own rows.
        let starts = [0, 9, 16, 20, 24], lengths = [9, 7, 4, 4, 0]
        let prefixStarts = [0, 0, 0, 20, 20], prefixLengths = [0, 5, 5, 0, 2]
        let T = 24, longest = 12
        let shape = AttentionShape(heads: H, kvHeads: Hkv, headDim: D, blockRows: 3, window: window)
        let q = randoms(T * H * D), k = randoms(T * Hkv * D), v = randoms(T * Hkv * D), g = randoms(T * H * D)
        var out = [Float](repeating: 0, count: T * H * D), lse = [Float](repeating: 0, count: T * H)
        var scratch = [Float](repeating: .nan, count: shape.scratchCount(longest: longest))
        attentionForward(out: &out, lse: &lse, q: q, k: k, v: v, starts: starts, lengths: lengths, prefixStarts: prefixStarts,
                         prefixLengths: prefixLengths, sequences: 5, shape: shape, scratch: &scratch, matmul: blas)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: g, q: q, k: k, v: v, out: out, lse: lse, starts: starts,
                          lengths: lengths, prefixStarts: prefixStarts, prefixLengths: prefixLengths, sequences: 5,
                          shape: shape, scratch: &scratch, longest: longest, matmul: blas)
        let qd = q.map(Double.init), kd = k.map(Double.init), vd = v.map(Double.init), gd = g.map(Double.init)
        func att(_ q: [Double], _ k: [Double], _ v: [Double]) -> [Double] {
            Self.maskedAttention(q: q, k: k, v: v, starts: starts, lengths: lengths, prefixStarts: prefixStarts,
                                 prefixLengths: prefixLengths, H: H, Hkv: Hkv, D: D, window: window)
        }
        assertClose(out, att(qd, kd, vd), tol: 1e-5, "prefix attention forward, \(label)")
        func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double { zip(att(q, k, v), gd).map(*).reduce(0, +) }
        // With a window of 1 every softmax has one entry, so dq and dk are exactly 0: what ours holds there
        // is the rounding of dP − rowsum(dO·O), terms the size of dv, which sets their scale.
        let dvReference = numericGradient(vd) { loss(qd, kd, $0) }
        let gradientScale = dvReference.map(abs).max() ?? 0
        assertClose(dq, numericGradient(qd) { loss($0, kd, vd) }, tol: 1e-4, "prefix attention dq, \(label)", floor: gradientScale)
        assertClose(dk, numericGradient(kd) { loss(qd, $0, vd) }, tol: 1e-4, "prefix attention dk, \(label)", floor: gradientScale)
        assertClose(dv, dvReference, tol: 1e-4, "prefix attention dv, \(label)")

        // The same batch without prefixes: zero prefix lengths run exactly the products of no prefix table.
        let zeros = [Int](repeating: 0, count: 5)
        var plain = out, withZeros = out, plainLSE = lse, zerosLSE = lse
        attentionForward(out: &plain, lse: &plainLSE, q: q, k: k, v: v, starts: starts, lengths: lengths, sequences: 5,
                         shape: shape, scratch: &scratch, matmul: blas)
        attentionForward(out: &withZeros, lse: &zerosLSE, q: q, k: k, v: v, starts: starts, lengths: lengths,
                         prefixStarts: prefixStarts, prefixLengths: zeros, sequences: 5, shape: shape, scratch: &scratch,
                         matmul: blas)
        XCTAssertEqual(plain, withZeros, label)
        XCTAssertEqual(plainLSE, zerosLSE, label)
    }

    func testLogProbForwardAndBackwardInChunks() {
        let rows = 7, C = 5, V = 11
        let h = randoms(rows * C, scale: 2), w = randoms(V * C), dl = randoms(rows)
        let targets: [Int32] = (0..<rows).map { Int32(($0 * 5 + 3) % V) }
        var logp = [Float](repeating: 0, count: rows), lse = logp, sums = logp, entropy = logp, top1 = logp
        var scratch = [Float](repeating: 0, count: 3 * V)
        logProbForward(logp: &logp, lse: &lse, logitSum: &sums, entropy: &entropy, top1: &top1, hidden: h, weight: w, targets: targets, rows: rows, channels: C, vocab: V, chunk: 3, scratch: &scratch, matmul: blas)
        var dh = [Float](repeating: 0, count: rows * C), dw = [Float](repeating: 0, count: V * C)
        logProbBackward(dhidden: &dh, dweight: &dw, dlogp: dl, hidden: h, weight: w, targets: targets, rows: rows, channels: C, vocab: V, chunk: 3, scratch: &scratch, matmul: blas)
        func logps(_ h: [Double], _ w: [Double]) -> [Double] {
            let logits = Self.linear(h, w, nil, rows: rows, inF: C, outF: V)
            return (0..<rows).map { r in
                let row = Array(logits[(r * V)..<((r + 1) * V)])
                let m = row.max()!
                return row[Int(targets[r])] - m - log(row.map { exp($0 - m) }.reduce(0, +))
            }
        }
        let hd = h.map(Double.init), wd = w.map(Double.init), gd = dl.map(Double.init)
        assertClose(logp, logps(hd, wd), tol: 1e-6, "log-prob forward")
        let logits = Self.linear(hd, wd, nil, rows: rows, inF: C, outF: V)
        assertClose(sums, (0..<rows).map { r in logits[(r * V)..<((r + 1) * V)].reduce(0, +) }, tol: 1e-6, "logit sums")
        let entropies = (0..<rows).map { r -> Double in
            let row = Array(logits[(r * V)..<((r + 1) * V)]), m = row.max()!
            let z = row.map { exp($0 - m) }.reduce(0, +)
            return -row.map { let lp = $0 - m - log(z); return exp(lp) * lp }.reduce(0, +)
        }
        assertClose(entropy, entropies, tol: 1e-6, "entropy")
        XCTAssertEqual(top1, (0..<rows).map { r -> Float in
            let row = Array(logits[(r * V)..<((r + 1) * V)])
            return row.firstIndex(of: row.max()!) == Int(targets[r]) ? 1 : 0
        }, "argmax == target")
        assertClose(dh, numericGradient(hd) { zip(logps($0, wd), gd).map(*).reduce(0, +) }, tol: 1e-5, "log-prob d hidden")
        assertClose(dw, numericGradient(wd) { zip(logps(hd, $0), gd).map(*).reduce(0, +) }, tol: 1e-5, "log-prob d weight")
    }

    /// The softmax kept by forward gives backward the bits of one recomputed from the logits (which
    /// `testLogProbForwardAndBackwardInChunks` checks against finite differences), over a vocabulary of
    /// several exponential blocks and a remainder, with chunks that do not divide the rows; forward's
    /// outputs do not change with `keep`, and the kept rows are the softmax.
    func testKeptSoftmaxGivesTheBitsOfARecomputedOne() {
        let rows = 7, C = 5, V = 600, chunk = 3
        let h = randoms(rows * C, scale: 2), w = randoms(V * C), dl = randoms(rows), start = randoms(V * C)
        let targets: [Int32] = (0..<rows).map { Int32(($0 * 97 + 11) % V) }
        var logp = [Float](repeating: 0, count: rows), lse = logp, sums = logp, entropy = logp, top1 = logp
        var keptLogp = logp, keptLSE = logp, keptSums = logp, keptEntropy = logp, keptTop1 = logp
        var scratch = [Float](repeating: 0, count: chunk * V), kept = [Float](repeating: .nan, count: rows * V)
        logProbForward(logp: &logp, lse: &lse, logitSum: &sums, entropy: &entropy, top1: &top1, hidden: h, weight: w,
                       targets: targets, rows: rows, channels: C, vocab: V, chunk: chunk, scratch: &scratch, matmul: blas)
        logProbForward(logp: &keptLogp, lse: &keptLSE, logitSum: &keptSums, entropy: &keptEntropy, top1: &keptTop1,
                       hidden: h, weight: w, targets: targets, rows: rows, channels: C, vocab: V, chunk: chunk,
                       scratch: &scratch, keep: &kept, matmul: blas)
        XCTAssertEqual([logp, lse, sums, entropy, top1], [keptLogp, keptLSE, keptSums, keptEntropy, keptTop1])
        for r in 0..<rows {
            let p = kept[(r * V)..<((r + 1) * V)]
            XCTAssertEqual(Double(p.reduce(0, +)), 1, accuracy: 1e-5)
            XCTAssertEqual(Double(log(p[r * V + Int(targets[r])])), Double(logp[r]), accuracy: 1e-4)
        }
        var dh = [Float](repeating: 0, count: rows * C), dw = start, keptDH = dh, keptDW = start
        logProbBackward(dhidden: &dh, dweight: &dw, dlogp: dl, hidden: h, weight: w, targets: targets, rows: rows,
                        channels: C, vocab: V, chunk: chunk, scratch: &scratch, matmul: blas)
        logProbBackward(dhidden: &keptDH, dweight: &keptDW, dlogp: dl, hidden: h, weight: w, targets: targets, rows: rows,
                        channels: C, vocab: V, chunk: chunk, scratch: &scratch, kept: &kept, matmul: blas)
        XCTAssertEqual(dh.map(\.bitPattern), keptDH.map(\.bitPattern))
        XCTAssertEqual(dw.map(\.bitPattern), keptDW.map(\.bitPattern))
        XCTAssertNotEqual(dw, start)
    }

    /// Entropy and argmax == target over a vocabulary wider than the kernel's 256-entry block, on
    /// integer logits (exact in fp32 whatever the product's order) so that a tie is a real tie: the
    /// target counts as the argmax only as the first maximum, as torch.argmax.
    func testLogProbHeadEntropyAndFirstMaximum() {
        let C = 4, V = 300
        var w = (0..<(V * C)).map { _ in Float(Int.random(in: -2...2, using: &rng)) }
        for v in [40, 290] { for c in 0..<C { w[v * C + c] = 3 } }  // the same, largest logit for a positive row
        let h: [Float] = [1, 1, 1, 1, 1, 1, 1, 1] + (0..<(4 * C)).map { _ in Float(Int.random(in: -2...2, using: &rng)) }
        let rows = h.count / C
        let logits = Self.linear(h.map(Double.init), w.map(Double.init), nil, rows: rows, inF: C, outF: V)
        func row(_ r: Int) -> [Double] { Array(logits[(r * V)..<((r + 1) * V)]) }
        func argmax(_ r: Int) -> Int { row(r).firstIndex(of: row(r).max()!)! }
        let targets: [Int32] = [40, 290, Int32(argmax(2)), Int32(argmax(3)), Int32((argmax(4) + 1) % V), 0]
        var logp = [Float](repeating: 0, count: rows), lse = logp, sums = logp, entropy = logp, top1 = logp
        var scratch = [Float](repeating: 0, count: 4 * V)
        logProbForward(logp: &logp, lse: &lse, logitSum: &sums, entropy: &entropy, top1: &top1, hidden: h, weight: w,
                       targets: targets, rows: rows, channels: C, vocab: V, chunk: 4, scratch: &scratch, matmul: blas)
        let expectedTop1: [Float] = (0..<rows).map { argmax($0) == Int(targets[$0]) ? 1 : 0 }
        XCTAssertEqual(Array(expectedTop1[0..<5]), [1, 0, 1, 1, 0], "the test's own rows")
        XCTAssertEqual(top1, expectedTop1)
        let entropies = (0..<rows).map { r -> Double in
            let z = row(r), m = z.max()!, l = m + log(z.map { exp($0 - m) }.reduce(0, +))
            return -z.map { exp($0 - l) * ($0 - l) }.reduce(0, +)
        }
        assertClose(entropy, entropies, tol: 1e-5, "entropy")
        assertClose(logp, (0..<rows).map { r in
            let z = row(r), m = z.max()!
            return z[Int(targets[r])] - m - log(z.map { exp($0 - m) }.reduce(0, +))
        }, tol: 1e-5, "log-probs")
    }

    func testEmbeddingBackwardAccumulatesRepeatedTokens() {
        let C = 3, V = 4
        let tokens: [Int32] = [2, 0, 2]
        let table = randoms(V * C), g = randoms(3 * C)
        var out = [Float](repeating: 0, count: 3 * C), dt = [Float](repeating: 0, count: V * C)
        embeddingForward(out: &out, tokens: tokens, table: table, rows: 3, channels: C)
        embeddingBackward(dtable: &dt, dout: g, tokens: tokens, rows: 3, channels: C)
        XCTAssertEqual(Array(out[3..<6]), Array(table[0..<3]))
        let td = table.map(Double.init), gd = g.map(Double.init)
        let numeric = numericGradient(td) { t -> Double in
            var total = 0.0
            for r in 0..<3 { for c in 0..<C { total += t[Int(tokens[r]) * C + c] * gd[r * C + c] } }
            return total
        }
        assertClose(dt, numeric, tol: 1e-6, "embedding backward")
    }
}
