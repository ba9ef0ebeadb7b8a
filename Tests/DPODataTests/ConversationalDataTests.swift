import DPOTestSupport
import XCTest
@testable import DPOData
@testable import Tokenization

/// Conversational rows tokenized as TRL 1.16 does, through the model's chat template (ids from
/// TRL's own `_tokenize` over transformers' `apply_chat_template`: tools/make_conversational_fixtures.py).
final class ConversationalDataTests: XCTestCase {
    static let dir = Fixtures.root + "/conversational"
    let tokenizer = try! Tokenizer(directory: Fixtures.model("llama-tied") + "/model")

    struct PairIDs: Decodable { let prompt_len: Int; let chosen: [Int]; let rejected: [Int] }
    struct SFTIDs: Decodable { let ids: [Int]; let completion_start: Int }

    func testPreferencePairsMatchTRL() throws {
        let pairs = try PreferenceFile.load(Self.dir + "/preference.jsonl").pairs
        let expected = try JSONDecoder().decode([PairIDs].self, from: Data(contentsOf: URL(fileURLWithPath: Self.dir + "/preference.tokens.json")))
        XCTAssertEqual(pairs.count, expected.count)
        for (pair, e) in zip(pairs, expected) {
            XCTAssertNotNil(pair.conversation, "line \(pair.line)")
            let ours = try TokenizedPair(pair, tokenizer: tokenizer)
            XCTAssertEqual(ours.promptLength, e.prompt_len, "line \(pair.line)")
            XCTAssertEqual(ours.chosen, e.chosen, "line \(pair.line)")
            XCTAssertEqual(ours.rejected, e.rejected, "line \(pair.line)")
        }
    }

    func testSFTRowsMatchTRL() throws {
        let (examples, skipped) = try SFTData.load(path: Self.dir + "/sft.jsonl", tokenizer: tokenizer, vocabulary: ModelVocabulary(size: tokenizer.vocabSize), maxLength: nil,
                                                   completionOnlyLoss: true, skipInvalid: false)
        XCTAssertEqual(skipped, 0)
        let expected = try JSONDecoder().decode([SFTIDs].self, from: Data(contentsOf: URL(fileURLWithPath: Self.dir + "/sft.tokens.json")))
        XCTAssertEqual(examples.count, expected.count)
        for (i, (ours, e)) in zip(examples, expected).enumerated() {
            XCTAssertEqual(ours.ids, e.ids, "row \(i + 1)")
            // The first token is never predicted, so a start of 0 and of 1 train the same tokens.
            XCTAssertEqual(max(ours.scoreFrom, 1), max(e.completion_start, 1), "row \(i + 1)")
        }
    }

    func testATemplateThatCannotRenderIsRefusedByName() throws {
        let dir = Fixtures.temporaryDirectory() + "/model"
        try FileManager.default.copyItem(atPath: Fixtures.model("llama-tied") + "/model", toPath: dir)
        let configPath = dir + "/tokenizer_config.json"
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
        config["chat_template"] = "{% for m in messages %}{{ m.content | frobnicate }}{% endfor %}"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        let t = try Tokenizer(directory: dir)
        let pair = try PreferenceFile.load(Self.dir + "/preference.jsonl").pairs[0]
        XCTAssertThrowsError(try TokenizedPair(pair, tokenizer: t)) { error in
            XCTAssertTrue("\(error)".contains("frobnicate") && "\(error)".contains("tokenizer_config.json"), "\(error)")
        }
    }
}
