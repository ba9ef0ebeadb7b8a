import XCTest
@testable import DPOTraining

/// How a global batch becomes per-device batches: balanced by tokens, every example once, the sizes
/// of consecutive slices, and nothing that depends on the number of ranks.
final class MicroBatchBalanceTests: XCTestCase {
    func testLongestFirstIntoTheLightestBatchWithRoom() {
        // Example ids 10…15 with these token counts; batches of 2.
        let tokens = [10: 100, 11: 400, 12: 300, 13: 380, 14: 120, 15: 90]
        let batches = balancedMicroBatches([10, 11, 12, 13, 14, 15], size: 2, tokens: { tokens[$0]! })
        // By hand: 11 (400) → batch 0; 13 (380) → 1; 12 (300) → 2; 14 (120) → 2 (300 < 380 < 400);
        // 10 (100) → 1 (380 < 400); 15 (90) → 0. Loads 490, 480, 420; each batch in global order.
        XCTAssertEqual(batches, [[11, 15], [10, 13], [12, 14]])
        // Consecutive slices would carry 500, 680 and 210 tokens.
        let loads = batches.map { $0.reduce(0) { $0 + tokens[$1]! } }
        XCTAssertEqual(loads, [490, 480, 420])
    }

    func testAShortBatchKeepsTheSlicesSizesAndEveryExampleOnce() {
        let batch = Array(0..<7)
        for size in 1...8 {
            let batches = balancedMicroBatches(batch, size: size, tokens: { 50 + ($0 * 37) % 11 })
            let sizes = batches.map(\.count)
            let slices = stride(from: 0, to: batch.count, by: size).map { min(size, batch.count - $0) }
            XCTAssertEqual(sizes, slices, "size \(size)")
            XCTAssertEqual(batches.flatMap { $0 }.sorted(), batch, "size \(size)")
            for b in batches { XCTAssertEqual(b, b.sorted(), "each batch keeps the global order") }
        }
        XCTAssertEqual(balancedMicroBatches([], size: 2, tokens: { _ in 1 }), [])
        XCTAssertEqual(balancedMicroBatches([5, 3], size: 4, tokens: { $0 }), [[5, 3]])
    }

    /// Equal tokens: taken in batch order, dealt to the batches in turn.
    func testEqualTokensAreDealtInBatchOrder() {
        XCTAssertEqual(balancedMicroBatches([4, 2, 9, 7], size: 2, tokens: { _ in 10 }), [[4, 9], [2, 7]])
    }
}
