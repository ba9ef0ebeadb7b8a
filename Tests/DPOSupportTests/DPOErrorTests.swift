import XCTest
@testable import DPOSupport

final class SmokeTests: XCTestCase {
    func testErrorNamesFile() {
        XCTAssertEqual(DPOError.file("a.json", "bad").description, "a.json: bad")
    }
}
