import DPOTestSupport
import XCTest
@testable import DPOData
@testable import Tokenization

/// Preference rows read and tokenized as TRL 1.16's DPOTrainer does (its own tokenization code:
/// tools/make_model_fixtures.py).
final class PreferenceDataTests: XCTestCase {
    struct TRLTokens: Decodable { let prompt_ids: [Int], chosen_ids: [Int], rejected_ids: [Int] }

    func testTokenizationEqualsTRL() throws {
        for name in Fixtures.modelNames {
            let dir = Fixtures.model(name)
            let tokenizer = try Tokenizer(directory: dir + "/model")
            let pairs = try PreferenceFile.load(dir + "/pairs.jsonl").pairs
            let trl = try JSONDecoder().decode([TRLTokens].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/pairs.tokens.json")))
            XCTAssertEqual(pairs.count, trl.count)
            for (pair, t) in zip(pairs, trl) {
                let ours = try TokenizedPair(pair, tokenizer: tokenizer)
                XCTAssertEqual(ours.promptLength, t.prompt_ids.count, "\(name) line \(pair.line): prompt boundary")
                XCTAssertEqual(ours.chosen, t.prompt_ids + t.chosen_ids, "\(name) line \(pair.line): chosen ids")
                XCTAssertEqual(ours.rejected, t.prompt_ids + t.rejected_ids, "\(name) line \(pair.line): rejected ids")
            }
        }
    }

    func testImplicitPromptIsTheCommonPrefix() {
        let p = PreferenceFile.implicitPrompt(chosen: "Q: 2+2? A: 4", rejected: "Q: 2+2? A: 5")
        XCTAssertEqual(p.prompt, "Q: 2+2? A:")
        XCTAssertEqual(p.chosen, " 4")
        // A shared trailing space goes to the completions, as TRL's extract_prompt does.
        let q = PreferenceFile.implicitPrompt(chosen: "Say hi please", rejected: "Say yo")
        XCTAssertEqual(q.prompt, "Say")
        XCTAssertEqual(q.chosen, " hi please")
        XCTAssertEqual(q.rejected, " yo")
        // No split inside a word is undone: only a space right before the difference moves.
        XCTAssertEqual(PreferenceFile.implicitPrompt(chosen: "Say hi", rejected: "Say hello").prompt, "Say h")
        // One text a prefix of the other: TRL's loop ends one short, leaving both completions non-empty.
        let r = PreferenceFile.implicitPrompt(chosen: "abc", rejected: "abcd")
        XCTAssertEqual([r.prompt, r.chosen, r.rejected], ["ab", "c", "cd"])
    }

    func writeFile(_ contents: Data) -> String {
        let path = Fixtures.temporaryDirectory() + "/data.jsonl"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: contents), path)
        return path
    }

    func assertRefused(_ contents: String, _ fragments: [String], line: UInt = #line) {
        assertRefused(Data(contents.utf8), fragments, line: line)
    }

    func assertRefused(_ contents: Data, _ fragments: [String], line: UInt = #line) {
        let path = writeFile(contents)
        XCTAssertThrowsError(try PreferenceFile.load(path), line: line) { error in
            let message = "\(error)"
            for f in [path] + fragments { XCTAssertTrue(message.contains(f), "\"\(message)\" should mention \"\(f)\"", line: line) }
        }
    }

    func testBadRowsAreNamedByLineAndField() throws {
        let good = #"{"prompt": "a", "chosen": "b", "rejected": "c"}"#
        assertRefused(good + "\n{\"prompt\": \"a\", \"chosen\": \"b\"\n", [":2:", "malformed JSON"])
        assertRefused(good + "\n" + #"{"prompt": "a", "chosen": "b"}"#, [":2:", "missing field \"rejected\""])
        assertRefused(#"{"prompt": "a", "chosen": 3, "rejected": "c"}"#, [":1:", "\"chosen\" must be a string"])
        assertRefused(#"{"prompt": "a", "chosen": "", "rejected": "c"}"#, [":1:", "\"chosen\" is an empty completion"])
        assertRefused(Data(good.utf8) + Data("\n{\"prompt\": \"\u{00}".utf8) + Data([0xFF, 0xFE]) + Data("\"}".utf8), [":2:", "not valid UTF-8"])
        assertRefused("", ["empty"])
        assertRefused("\n\n", ["empty"])
    }

    func testSkipInvalidRowsCountsThem() throws {
        let text = """
        {"prompt": "a", "chosen": "b", "rejected": "c"}
        {"prompt": "a", "chosen": "b"}
        not json
        [{"prompt": "x"}]
        {"prompt": "d", "chosen": "e", "rejected": "f"}
        """
        let (pairs, skipped) = try PreferenceFile.load(writeFile(Data(text.utf8)), skipInvalid: true)
        XCTAssertEqual(pairs.map(\.prompt), ["a", "d"])
        XCTAssertEqual(pairs.map(\.line), [1, 5])
        XCTAssertEqual(skipped, 3)  // line 2 lacks "rejected", line 3 is not JSON, line 4 is not an object
    }

    func testJSONArrayFilesAreRead() throws {
        let text = #"[{"prompt": "a", "chosen": "b", "rejected": "c"}, {"chosen": "x y", "rejected": "x z"}]"#
        let pairs = try PreferenceFile.load(writeFile(Data(text.utf8))).pairs
        XCTAssertEqual(pairs.count, 2)
        XCTAssertEqual(pairs[1], PreferencePair(prompt: "x", chosen: " y", rejected: " z", line: 2))
    }
}
