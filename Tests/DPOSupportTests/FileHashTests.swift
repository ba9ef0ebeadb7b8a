import DPOSupport
import DPOTestSupport
import Foundation
import XCTest

/// The reference log-prob cache is keyed by a hash of the reference's files, read in pieces: the key
/// must follow every byte of a file (in any piece, in the words and in the tail), its length, and
/// nothing else.
final class FileHashTests: XCTestCase {
    private func hash(_ bytes: [UInt8], in dir: String, name: String = "f") throws -> UInt64 {
        let path = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var h = FNV1a()
        try h.add(fileAt: path)
        return h.value
    }

    func testEveryByteAndTheLengthChangeTheHash() throws {
        let dir = Fixtures.temporaryDirectory("file-hash")
        // Longer than one 8 MB piece, and not a whole number of words.
        var rng = SplitMix64(seed: 7)
        let count = (8 << 20) + 4096 + 5
        let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let base = try hash(bytes, in: dir)
        XCTAssertEqual(try hash(bytes, in: dir, name: "copy"), base, "the same bytes under another name")
        var seen: Set<UInt64> = [base]
        // One bit flipped: low and high bits of a word, in the first piece, the second piece and the tail.
        for (offset, bit) in [(0, 0), (7, 7), (3, 5), (8 << 20, 0), ((8 << 20) + 7, 7), (count - 1, 3), (count - 5, 6)] {
            var changed = bytes
            changed[offset] ^= 1 << bit
            let h = try hash(changed, in: dir)
            XCTAssertFalse(seen.contains(h), "flipping bit \(bit) of byte \(offset) left the hash of an earlier file")
            seen.insert(h)
        }
        // Two words swapped (a hash that only summed the words would miss it).
        var swapped = bytes
        for i in 0..<8 { swapped.swapAt(i, 8 + i) }
        XCTAssertFalse(seen.contains(try hash(swapped, in: dir)))
        // A zero byte appended: same words, longer file.
        XCTAssertNotEqual(try hash(bytes + [0], in: dir), base)
        XCTAssertNotEqual(try hash([], in: dir), try hash([0], in: dir))
    }

    func testAMissingFileIsAnErrorNamingIt() throws {
        var h = FNV1a()
        let path = Fixtures.temporaryDirectory("file-hash-missing") + "/absent.safetensors"
        XCTAssertThrowsError(try h.add(fileAt: path)) { error in
            XCTAssertEqual((error as? DPOError)?.message, "\(path): cannot read: No such file or directory")
        }
    }
}
