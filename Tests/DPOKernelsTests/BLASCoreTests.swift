import XCTest
@testable import DPOKernels

final class BLASCoreTests: XCTestCase {
    func testGenericFallbackIsReplacedByWhatTheFlagsAllow() {
        XCTAssertEqual(BLASCore.betterCoreType(cpuFlags: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx2", "fma"], current: "Prescott"), "SkylakeX")
        XCTAssertEqual(BLASCore.betterCoreType(cpuFlags: ["avx", "avx2", "fma"], current: "Prescott"), "Haswell")
        XCTAssertNil(BLASCore.betterCoreType(cpuFlags: ["sse3"], current: "Prescott"))
        // A core OpenBLAS recognised is left alone.
        XCTAssertNil(BLASCore.betterCoreType(cpuFlags: ["avx512f", "avx2", "fma"], current: "Haswell"))
    }

    func testCoreNameIsReadable() {
        XCTAssertFalse(BLASCore.name.isEmpty)
    }
}
