import DPOTestSupport
import XCTest
@testable import DPOModel

/// `dpo-dist init` as a user runs it.
final class InitCommandTests: XCTestCase {
    /// The command as a user runs it: files written, a summary on stderr, bad sizes as one `error:` line.
    func testCommandLine() throws {
        func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
            let r = try ProcessRunner.dpoDist(arguments)
            XCTAssertEqual(r.reason, .exit, "ended by a signal")
            return (r.status, r.stderr)
        }

        let root = Fixtures.temporaryDirectory("dpo-dist-init")
        let corpus = Fixtures.root + "/init/corpus.txt"
        let ok = try run(["init", "--output", root + "/m", "--tokenizer-from", corpus, "--merges", "300", "--seed", "5"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("151 merges learned"), ok.stderr)
        let written = try Data(contentsOf: URL(fileURLWithPath: root + "/m/tokenizer.json"))
        let fixture = try Data(contentsOf: URL(fileURLWithPath: Fixtures.root + "/init/tokenizer.json"))
        XCTAssertEqual(written, fixture, "the command writes the fixture's tokenizer.json byte for byte")
        XCTAssertNoThrow(try ModelDirectory.load(root + "/m"))

        let bad = try run(["init", "--output", root + "/bad", "--heads", "5"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "error: num_attention_heads (--heads) 5 does not divide hidden_size (--hidden-size) 64\n")
        let again = try run(["init", "--output", root + "/m"])
        XCTAssertEqual(again.stderr, "error: \(root)/m: already holds a model (config.json); pass --overwrite to replace it\n")
        let missing = try run(["init", "--output", root + "/x", "--tokenizer-from", root + "/none.txt"])
        XCTAssertEqual(missing.stderr, "error: \(root)/none.txt: cannot read the tokenizer corpus\n")
    }
}
