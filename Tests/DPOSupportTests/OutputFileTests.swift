import DPOSupport
import DPOTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Where output goes: a regular file is replaced atomically, a device, FIFO or socket is written as it
/// is (so `--output /dev/null` leaves /dev/null a device), a symlink is followed, a directory refused.
final class OutputFileTests: XCTestCase {
    private func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "output-file-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    private func type(_ path: String, followingLinks: Bool = false) -> mode_t {
        var info = stat()
        let status = followingLinks ? stat(path, &info) : lstat(path, &info)
        return status == 0 ? info.st_mode & S_IFMT : 0
    }

    private func nullDevice(in dir: String) throws -> String {
        guard let path = try Fixtures.nullDevice(at: dir + "/null") else { throw XCTSkip("mknod is not permitted here (not root, or no CAP_MKNOD)") }
        return path
    }

    /// Everything a FIFO delivers until its writer closes (Foundation's file readers expect a size).
    static func readToEnd(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    func testARegularFileIsReplacedWhole() throws {
        let path = try folder() + "/scores.jsonl"
        try OutputFile.write("old\n", to: path)
        try OutputFile.write("new\n", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new\n")
        XCTAssertEqual(type(path), S_IFREG)
        XCTAssertEqual(try OutputFile.destination(path), .replace(path))
    }

    func testACharacterDeviceStaysADevice() throws {
        let device = try nullDevice(in: try folder())
        XCTAssertEqual(try OutputFile.destination(device), .direct(device))
        try OutputFile.write(String(repeating: "x", count: 100_000), to: device)
        XCTAssertEqual(type(device), S_IFCHR, "the device was replaced")
    }

    func testAFIFOIsWrittenToItsReader() throws {
        let path = try folder() + "/pipe"
        guard mkfifo(path, 0o600) == 0 else { throw XCTSkip("mkfifo is not permitted here (\(String(cString: strerror(errno))))") }
        let text = (0..<2000).map { "line \($0)\n" }.joined()
        final class Received: @unchecked Sendable { var text = "" }
        let received = Received(), done = DispatchSemaphore(value: 0)
        Thread {
            received.text = String(decoding: OutputFileTests.readToEnd(path), as: UTF8.self)
            done.signal()
        }.start()
        try OutputFile.write(text, to: path)
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(received.text, text)
        XCTAssertEqual(type(path), S_IFIFO, "the FIFO was replaced")
    }

    func testASymlinkIsFollowedAndKept() throws {
        let dir = try folder()
        try OutputFile.write("old\n", to: dir + "/target.txt")
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.txt", withDestinationPath: "target.txt")
        try OutputFile.write("new\n", to: dir + "/link.txt")
        XCTAssertEqual(type(dir + "/link.txt"), S_IFLNK, "the link was replaced by a file")
        XCTAssertEqual(try String(contentsOfFile: dir + "/target.txt", encoding: .utf8), "new\n")
        // A dangling link: its target is created.
        try FileManager.default.createSymbolicLink(atPath: dir + "/dangling.txt", withDestinationPath: dir + "/later.txt")
        try OutputFile.write("made\n", to: dir + "/dangling.txt")
        XCTAssertEqual(type(dir + "/dangling.txt"), S_IFLNK)
        XCTAssertEqual(try String(contentsOfFile: dir + "/later.txt", encoding: .utf8), "made\n")
    }

    func testADirectoryIsRefused() throws {
        let dir = try folder()
        XCTAssertThrowsError(try OutputFile.write("x", to: dir)) { error in
            XCTAssertTrue("\(error)".contains("is a directory"), "\(error)")
        }
        XCTAssertEqual(type(dir), S_IFDIR)
    }

    func testAnOutputDirectoryMustBeOne() throws {
        let dir = try folder()
        try OutputFile.write("x", to: dir + "/file")
        XCTAssertThrowsError(try OutputFile.checkDirectory(dir + "/file")) { error in
            XCTAssertTrue("\(error)".contains("is not a directory"), "\(error)")
        }
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/linked", withDestinationPath: dir + "/real")
        XCTAssertNoThrow(try OutputFile.checkDirectory(dir + "/linked"))
        XCTAssertNoThrow(try OutputFile.checkDirectory(dir + "/not-yet"))
    }
}
