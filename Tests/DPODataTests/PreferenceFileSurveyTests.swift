import DPOTestSupport
import XCTest
@testable import DPOData

/// What a preference file holds that the pairs do not show: unused fields and implicit prompts.
final class PreferenceFileSurveyTests: XCTestCase {
    func survey(_ lines: [String]) throws -> (PreferenceFileSurvey, String) {
        let path = Fixtures.temporaryDirectory("survey") + "/rows.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return (try PreferenceFileSurvey(path: path), path)
    }

    func testConversationalRowsNullPromptsAndInvalidRows() throws {
        let user = #"{"role": "user", "content": "Hi"}"#
        let (s, path) = try survey([
            // Conversational, no prompt: the shared first turn is the prompt (not empty).
            #"{"chosen": [\#(user), {"role": "assistant", "content": "Hello"}], "rejected": [\#(user), {"role": "assistant", "content": "Go"}]}"#,
            // Conversational, nothing shared: an empty prompt.
            #"{"chosen": [{"role": "assistant", "content": "A"}], "rejected": [{"role": "assistant", "content": "B"}], "score": 1}"#,
            // "prompt": null is no prompt (as in PreferenceFile).
            #"{"prompt": null, "chosen": "yes", "rejected": "no"}"#,
            // Invalid rows are the load's to report, not counted here.
            #"{"prompt": "a", "chosen": "b"}"#,
            "not json",
            // A long shared prefix is a fine implicit prompt.
            #"{"chosen": "Human: what is DPO? Assistant: a loss", "rejected": "Human: what is DPO? Assistant: no idea"}"#,
        ])
        XCTAssertEqual(s.rows, 4)
        XCTAssertEqual(s.unusedFields, ["score": 1])
        XCTAssertEqual(s.implicitPrompts, 4)
        XCTAssertEqual(s.emptyImplicitPrompts, 2)
        XCTAssertEqual(s.emptyImplicitPromptLines, [2, 3])
        XCTAssertEqual(s.shortImplicitPrompts, 0)
        XCTAssertEqual(s.warnings(path: path).count, 3)

        // A file of good implicit prompts only (TRL's extract_prompt format) warns about nothing.
        let (clean, cleanPath) = try survey([#"{"chosen": "The sky is blue today.", "rejected": "The sky is green today."}"#])
        XCTAssertEqual(clean.implicitPrompts, 1)
        XCTAssertEqual(clean.warnings(path: cleanPath), [])
    }

    func testLengthWarningCountsPairsPastThePositions() {
        let pairs = [TokenizedPair(chosen: Array(0..<10), rejected: Array(0..<4), promptLength: 2),
                     TokenizedPair(chosen: Array(0..<3), rejected: Array(0..<3), promptLength: 1)]
        XCTAssertNil(PreferenceFileSurvey.lengthWarning(maxLength: 8, maxPositionEmbeddings: 8, pairs: pairs))
        XCTAssertEqual(PreferenceFileSurvey.lengthWarning(maxLength: nil, maxPositionEmbeddings: 8, pairs: pairs),
                       "warning: max_length null is above the model's max_position_embeddings 8: a longer sequence uses positions "
                       + "the model was never trained on (1 pair(s) here are)")
        XCTAssertTrue(PreferenceFileSurvey.lengthWarning(maxLength: 16, maxPositionEmbeddings: 12, pairs: pairs)!.hasSuffix("(no pair here is longer)"))
    }
}
