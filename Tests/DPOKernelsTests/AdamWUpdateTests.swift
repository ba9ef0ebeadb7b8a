import DPOSupport
import XCTest
@testable import DPOKernels

/// The vectorised AdamW update against torch.optim.AdamW's single-tensor step written out element by
/// element: the same fp32 operations in the same order, so the same bits, on a range whose start and
/// length are not multiples of the vector width and with moments that start inside the parameters.
final class AdamWUpdateTests: XCTestCase {
    func testTheUpdateIsTorchsElementByElement() {
        let n = 1000, range = 7..<(7 + 613), offset = 5
        var rng = SplitMix64(seed: 3)
        var params = (0..<n).map { _ in rng.nextGaussian() }
        let grads = (0..<n).map { _ in rng.nextGaussian() * 0.1 }
        var m = (0..<(n - offset)).map { _ in rng.nextGaussian() * 0.01 }
        var v = (0..<(n - offset)).map { _ in abs(rng.nextGaussian()) * 1e-4 }
        var (p2, m2, v2) = (params, m, v)
        let original = params
        let (lr, beta1, beta2, eps, decay): (Float, Float, Float, Float, Float) = (1e-3, 0.9, 0.999, 1e-8, 0.1)
        let step = 3
        adamwUpdate(params: &params, grads: grads, m: &m, v: &v, range: range, momentOffset: offset, lr: lr,
                    beta1: beta1, beta2: beta2, eps: eps, weightDecay: decay, step: step)
        // torch: p.mul_(1 - lr·wd); m.lerp_(g, 1 - β1); v.mul_(β2).addcmul_(g, g, 1 - β2);
        // p.addcdiv_(m, v.sqrt() / √(1 - β2^t) + eps, value: −lr / (1 − β1^t)).
        let bc1 = 1 - powf(beta1, Float(step)), bc2Sqrt = (1 - powf(beta2, Float(step))).squareRoot()
        for i in range {
            let g = grads[i], j = i - offset
            var p = p2[i]
            p -= lr * decay * p
            m2[j] = beta1 * m2[j] + (1 - beta1) * g
            v2[j] = beta2 * v2[j] + (1 - beta2) * g * g
            p2[i] = p - (lr / bc1) * m2[j] / (v2[j].squareRoot() / bc2Sqrt + eps)
        }
        XCTAssertEqual(params, p2)
        XCTAssertEqual(m, m2)
        XCTAssertEqual(v, v2)
        XCTAssertTrue(range.allSatisfy { params[$0] != original[$0] }, "every parameter in the range moved")
        XCTAssertEqual(params[0..<range.lowerBound], original[0..<range.lowerBound])
        XCTAssertEqual(params[range.upperBound...], original[range.upperBound...])
    }
    /// Clipping's factor applied inside the update gives the bits of scaling the gradients first, and
    /// the update split over threads gives the bits of one thread.
    func testTheFusedClipFactorAndThreadsGiveTheSameBits() {
        let n = 200_003, range = 3..<n
        var rng = SplitMix64(seed: 9)
        let params = (0..<n).map { _ in rng.nextGaussian() }
        let grads = (0..<n).map { _ in rng.nextGaussian() * 0.1 }
        let m = (0..<n).map { _ in rng.nextGaussian() * 0.01 }
        let v = (0..<n).map { _ in abs(rng.nextGaussian()) * 1e-4 }
        let factor: Float = 0.37
        func run(_ grads: [Float], scale: Float, threads: Int) -> [Float] {
            KernelThreads.set(threads)
            defer { KernelThreads.set(1) }
            var (p, mm, vv) = (params, m, v)
            adamwUpdate(params: &p, grads: grads, m: &mm, v: &vv, range: range, momentOffset: 0, lr: 1e-3, beta1: 0.9,
                        beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 2, gradScale: scale)
            return p + mm + vv
        }
        let prescaled = run(grads.map { $0 * factor }, scale: 1, threads: 1)
        XCTAssertEqual(run(grads, scale: factor, threads: 1), prescaled)
        XCTAssertEqual(run(grads, scale: factor, threads: 2), prescaled)
        XCTAssertEqual(run(grads, scale: factor, threads: 3), prescaled)
        XCTAssertNotEqual(run(grads, scale: 1, threads: 1), prescaled, "the factor changes the update")
    }
}
