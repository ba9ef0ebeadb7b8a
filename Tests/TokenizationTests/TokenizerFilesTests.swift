import DPOTestSupport
import XCTest
@testable import Tokenization

/// The tokenizer files `dpo-dist init` writes: the BPE trainer, and the ids the Python `tokenizers`
/// library gives for its output.
final class TokenizerFilesTests: XCTestCase {
    /// The committed tokenizer.json is what the Swift trainer makes from the committed corpus, and
    /// ids.json holds the ids the Python `tokenizers` library (checked equal to transformers'
    /// AutoTokenizer) gives for the same file: so the Swift tokenizer of an init'ed model agrees
    /// with transformers. Regenerate with tools/check_init_model.py (see its docstring).
    func testTokenizerMatchesPythonTokenizers() throws {
        let dir = Fixtures.root + "/init"
        let corpus = try String(contentsOfFile: dir + "/corpus.txt", encoding: .utf8)
        let made = TokenizerFiles.makeTokenizerJSON(corpus: corpus, merges: 300)
        let committed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/tokenizer.json"))) as! [String: Any]
        // Round trip through JSON so numbers and nulls compare as the file's do.
        let remade = try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: made)) as! [String: Any]
        let madeMerges = (remade["model"] as! [String: Any])["merges"] as! [[String]]
        let committedMerges = (committed["model"] as! [String: Any])["merges"] as! [[String]]
        if let i = zip(madeMerges, committedMerges).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            XCTFail("merge \(i): trainer makes \(madeMerges[i]), fixture has \(committedMerges[i])")
        }
        XCTAssertEqual(madeMerges.count, committedMerges.count)
        XCTAssertEqual(NSDictionary(dictionary: remade), NSDictionary(dictionary: committed),
                       "makeTokenizerJSON no longer makes the committed fixture; regenerate it (tools/check_init_model.py)")

        let tokenizer = try Tokenizer(directory: dir)
        let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ids.json"))) as! [String: Any]
        let cases = fixture["cases"] as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 10)
        for c in cases {
            let text = c["text"] as! String
            let expected = c["ids"] as! [Int]
            XCTAssertEqual(tokenizer.encode(text), expected, "ids of \(text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(expected), c["decoded"] as! String)
            XCTAssertEqual(tokenizer.decode(expected, skipSpecialTokens: true), c["decoded_skip_special"] as! String)
        }
    }

    /// A hand-checked run: "ab ab ab ac" pre-tokenizes to ab, Ġab, Ġab, Ġac. (Ġ,a) and (a,b) both
    /// occur 3 times; the tie goes to the smaller ids, and Ġ (the space byte, id 3+32) comes before
    /// a (id 3+97). Then (Ġa,b) occurs twice; every other pair once, so training stops.
    func testTrainerMergesTheMostFrequentPairAndBreaksTiesBySmallerIDs() {
        var trainer = BPETrainer(corpus: "ab ab ab ac")
        let result = trainer.train(merges: 10)
        XCTAssertEqual(result.merges.map { [$0.0, $0.1] }, [["Ġ", "a"], ["Ġa", "b"]])
        XCTAssertEqual(result.vocab["Ġa"], 259)
        XCTAssertEqual(result.vocab["Ġab"], 260)
        XCTAssertEqual(result.vocab["a"], 3 + 97)

        // "aaaa": (a,a) merges left to right without overlap, then (aa,aa).
        var repeated = BPETrainer(corpus: "aaaa aaaa")
        XCTAssertEqual(repeated.train(merges: 10).merges.map { [$0.0, $0.1] }.prefix(2), [["a", "a"], ["aa", "aa"]])

        // Special-token strings in the corpus are never merged into.
        var special = BPETrainer(corpus: "<|endoftext|><|endoftext|><|endoftext|>")
        XCTAssertTrue(special.train(merges: 10).merges.isEmpty)
    }
}
