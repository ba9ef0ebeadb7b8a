import XCTest
@testable import DPOModel

/// The packed layout of a pair whose two sequences share their first tokens.
final class TokenBatchTests: XCTestCase {
    func testASharedPrefixIsPackedOnceAndScoredFromItsLastRow() {
        var batch = TokenBatch()
        batch.append([7, 8], scoreFrom: 1)
        // Prompt [1, 2, 3], chosen completion [4, 5], rejected completion [6].
        batch.appendSharingPrefix([1, 2, 3, 4, 5], [1, 2, 3, 6], shared: 3, scoreFrom: 3)
        XCTAssertEqual(batch.tokens, [7, 8, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(batch.positions, [0, 1, 0, 1, 2, 3, 4, 3])
        XCTAssertEqual(batch.starts, [0, 2, 7])
        XCTAssertEqual(batch.lengths, [2, 5, 1])
        XCTAssertEqual(batch.prefixStarts, [0, 2, 2])
        XCTAssertEqual(batch.prefixLengths, [0, 0, 3])
        // Row 4 (the last prompt row) predicts both completions' first tokens.
        XCTAssertEqual(batch.scoredRows, [0, 4, 5, 4])
        XCTAssertEqual(batch.scoredTargets, [8, 4, 5, 6])
        XCTAssertEqual(batch.scoredSequence, [0, 1, 1, 2])
        XCTAssertEqual(batch.longestSequence, 5)

        // Scored from past the shared part, and a second sequence with no tokens of its own.
        batch.removeAll()
        batch.appendSharingPrefix([1, 2, 3], [1, 2, 3, 4, 5, 6], shared: 2, scoreFrom: 3)
        batch.appendSharingPrefix([9, 9, 1], [9, 9], shared: 2, scoreFrom: 2)
        XCTAssertEqual(batch.tokens, [1, 2, 3, 3, 4, 5, 6, 9, 9, 1])
        XCTAssertEqual(batch.positions, [0, 1, 2, 2, 3, 4, 5, 0, 1, 2])
        XCTAssertEqual(batch.starts, [0, 3, 7, 10])
        XCTAssertEqual(batch.lengths, [3, 4, 3, 0])
        XCTAssertEqual(batch.prefixStarts, [0, 0, 7, 7])
        XCTAssertEqual(batch.prefixLengths, [0, 2, 0, 2])
        XCTAssertEqual(batch.scoredRows, [3, 4, 5, 8])
        XCTAssertEqual(batch.scoredTargets, [4, 5, 6, 1])
        XCTAssertEqual(batch.scoredSequence, [1, 1, 1, 2])
        XCTAssertEqual(batch.longestSequence, 6)
    }
}
