import XCTest
@testable import DPOSupport
@testable import DPOTraining

final class PreferenceLossTests: XCTestCase {
    func samplePairs() -> [PairLogps] {
        var rng = SplitMix64(seed: 3)
        return (0..<5).map { _ in
            PairLogps(policyChosen: -20 + 8 * Double(rng.nextGaussian()), policyRejected: -25 + 8 * Double(rng.nextGaussian()),
                      referenceChosen: -21 + 8 * Double(rng.nextGaussian()), referenceRejected: -24 + 8 * Double(rng.nextGaussian()),
                      chosenTokens: 5 + Int(rng.next() % 20), rejectedTokens: 5 + Int(rng.next() % 20))
        }
    }

    /// Every loss's derivative against central differences, pair by pair.
    func testEveryLossGradientMatchesFiniteDifferences() {
        let pairs = samplePairs()
        for type in PreferenceLossType.allCases {
            let loss = PreferenceLoss(types: [type], beta: 0.3, labelSmoothing: type == .exoPair ? 0.2 : 0.1)
            let (value, dc, dr) = loss.evaluate(pairs)
            XCTAssertTrue(value.isFinite, "\(type)")
            let h = 1e-5
            for i in pairs.indices {
                for chosen in [true, false] {
                    var up = pairs, down = pairs
                    if chosen { up[i].policyChosen += h; down[i].policyChosen -= h } else { up[i].policyRejected += h; down[i].policyRejected -= h }
                    let numeric = (loss.evaluate(up).loss - loss.evaluate(down).loss) / (2 * h)
                    let analytic = chosen ? dc[i] : dr[i]
                    XCTAssertEqual(analytic, numeric, accuracy: 1e-6 + 1e-5 * abs(numeric), "\(type) pair \(i) \(chosen ? "chosen" : "rejected")")
                }
            }
        }
    }

    /// Values against the formulas as TRL writes them, at one point.
    func testValuesAtOnePoint() {
        let p = PairLogps(policyChosen: -10, policyRejected: -14, referenceChosen: -11, referenceRejected: -12, chosenTokens: 4, rejectedTokens: 8)
        let beta = 0.5, delta = 3.0  // (−10+11) − (−14+12)
        func value(_ t: PreferenceLossType, eps: Double = 0) -> Double {
            PreferenceLoss(types: [t], beta: beta, labelSmoothing: eps).evaluate([p]).loss
        }
        XCTAssertEqual(value(.sigmoid), log(1 + exp(-beta * delta)), accuracy: 1e-12)
        XCTAssertEqual(value(.hinge), max(0, 1 - beta * delta), accuracy: 1e-12)
        XCTAssertEqual(value(.ipo), pow(1.0 / 4 - (-2.0) / 8 - 1 / (2 * beta), 2), accuracy: 1e-12)
        let x = beta * delta, e = 0.1
        XCTAssertEqual(value(.robust, eps: e), (-(1 - e) * log(1 / (1 + exp(-x))) + e * log(1 / (1 + exp(x)))) / (1 - 2 * e), accuracy: 1e-12)
        XCTAssertEqual(value(.sppoHard), pow(1 - 1 / (2 * beta), 2) + pow(-2 + 1 / (2 * beta), 2), accuracy: 1e-12)
        XCTAssertEqual(PreferenceLoss(types: [.sft], beta: beta).evaluate([p]).loss, 10.0 / 4, accuracy: 1e-12)
        // Weighted combination: Σ w_k L_k.
        let combined = PreferenceLoss(types: [.sigmoid, .sft], weights: [1, 0.5], beta: beta).evaluate([p]).loss
        XCTAssertEqual(combined, log(1 + exp(-beta * delta)) + 0.5 * 2.5, accuracy: 1e-12)
    }

    /// log σ via softplus: huge margins give finite losses and gradients, never NaN.
    func testLargeMarginsStayFinite() {
        for margin in [-1e6, -800.0, 800.0, 1e6] {
            let p = PairLogps(policyChosen: margin, policyRejected: 0, referenceChosen: 0, referenceRejected: 0, chosenTokens: 3, rejectedTokens: 3)
            for type in PreferenceLossType.allCases where type != .orpo && type != .simpo && type != .discopop {
                let (l, dc, dr) = PreferenceLoss(types: [type], beta: 0.1, labelSmoothing: type == .exoPair ? 0.1 : 0).evaluate([p])
                XCTAssertTrue(l.isFinite && dc[0].isFinite && dr[0].isFinite, "\(type) at margin \(margin): \(l) \(dc) \(dr)")
            }
        }
    }
}
