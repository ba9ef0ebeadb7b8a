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
        let both = try run(["init", "--output", root + "/y", "--tokenizer", root + "/m", "--tokenizer-from", corpus])
        XCTAssertEqual(both.status, 1)
        XCTAssertEqual(both.stderr, "error: --tokenizer copies a tokenizer and --tokenizer-from trains one: give one of them\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/y"))
    }

    /// `init --tokenizer DIR`: a tiny model over a published tokenizer, which train and inspect then use.
    func testInitOverARealTokenizer() throws {
        let source = Fixtures.sharedTokenizers + "/smollm2-135m"
        guard FileManager.default.fileExists(atPath: source + "/tokenizer.json") else { throw XCTSkip("\(source) is absent") }
        let root = Fixtures.temporaryDirectory("dpo-dist-init-real")
        let r = try ProcessRunner.dpoDist(["init", "--output", root + "/m", "--tokenizer", source, "--layers", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("tokenizer: 49152 tokens (copied from \(source)), EOS <|im_end|>, model vocab_size 49152"), r.stderr)
        let config = try ModelDirectory.load(root + "/m").model.config
        XCTAssertEqual([config.vocabSize, config.numLayers], [49152, 1])
        // Conversational pairs render with SmolLM2's template and end each turn with its EOS.
        let data = root + "/chat.jsonl"
        try #"{"prompt": [{"role": "user", "content": "3+4?"}], "chosen": [{"role": "assistant", "content": "7"}], "rejected": [{"role": "assistant", "content": "8"}]}"#
            .write(toFile: data, atomically: true, encoding: .utf8)
        let shown = try ProcessRunner.dpoDist(["inspect", "--model", root + "/m", "--data", data, "-n", "1"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertTrue(shown.stdout.contains("<|im_start|>user\n3+4?<|im_end|>\n<|im_start|>assistant\n▌\n"), shown.stdout)
        XCTAssertTrue(shown.stdout.contains("▌7<|im_end|>\n"), shown.stdout)
    }
}
