

// Vectorised helpers for the softmax-shaped loops (attention rows, the LM head's vocabulary rows,
// SwiGLU): with sgemm fast, scalar expf was the largest cost left outside the matrix products.
//
// Under -Ounchecked a plain loop over `fastExp` auto-vectorises (a loop over expf does not) as long
// as it carries no floating-point reduction, so sums are taken separately with SIMD16 accumulators;
// SIMD `pointwiseMax`/`clamped` are generic and slow, so maxima use a compare-and-replace.

typealias F16x = SIMD16<Float>

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> F16x {
    UnsafeRawPointer(p).loadUnaligned(as: F16x.self)
}

@inline(__always) func store16(_ v: F16x, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16x.self)
}

/// e^x: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r (Cephes expf coefficients) and
/// 2^n placed in the exponent bits. Relative error ≤ 2e-7 over the range; x is clamped to
/// [−87.3, 88.7], so e^(−∞) gives 1e-38 rather than 0 (callers only pass unmasked entries).
@inline(__always) func fastExp(_ x: Float) -> Float {
    let c = min(max(x, -87.3), 88.7)
    let t = c * 1.442_695_04 + 12_582_912  // adding 1.5·2²³ rounds c·log2(e) to an integer in t's low bits
    let n = t - 12_582_912
    let r = c - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p: Float = 1.987_569_1e-4
    p = p * r + 1.398_199_9e-3
    p = p * r + 8.333_452e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 0.166_666_65
    p = p * r + 0.5
    let y = p * r * r + r + 1
    return y * Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
}

/// Maximum of p[0..<n].
func maxOf(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = F16x(repeating: -.infinity)
    var i = 0
    while i + 16 <= n {
        let v = load16(p + i)
        m.replace(with: v, where: v .> m)
        i += 16
    }
    var result = -Float.infinity
    for j in 0..<16 where m[j] > result { result = m[j] }
    while i < n { result = max(result, p[i]); i += 1 }
    return result
}

/// Σ p[0..<n].
func sumOf(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var s = F16x.zero
    var i = 0
    while i + 16 <= n { s += load16(p + i); i += 16 }
    var result = s.sum()
    while i < n { result += p[i]; i += 1 }
    return result
}

/// p[i] = scale · e^(p[i] − shift).
func expInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int, shift: Float, scale: Float = 1) {
    for i in 0..<n { p[i] = scale * fastExp(p[i] - shift) }
}

/// out[i] = e^(p[i] − shift).
func expInto(_ out: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ n: Int, shift: Float) {
    for i in 0..<n { out[i] = fastExp(p[i] - shift) }
}

/// Σ a[i] · (b[i] − shift).
func shiftedDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
    var s = F16x.zero
    let c = F16x(repeating: shift)
    var i = 0
    while i + 16 <= n { s += load16(a + i) * (load16(b + i) - c); i += 16 }
    var result = s.sum()
    while i < n { result += a[i] * (b[i] - shift); i += 1 }
    return result
}

/// p[i] *= scale.
package func scaleInPlace(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ scale: Float) {
    for i in 0..<n { p[i] *= scale }
}
