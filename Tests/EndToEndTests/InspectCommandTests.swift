import DPOTestSupport
import XCTest

/// `dpo-dist inspect`: the pairs as train tokenizes them (token counts from TRL's tokenization in
/// the fixtures), the totals of truncated and dropped rows, and the warnings train prints too.
final class InspectCommandTests: XCTestCase {
    let model = Fixtures.model("llama-tied") + "/model"
    let pairs = Fixtures.model("llama-tied") + "/pairs.jsonl"

    /// One example's parts as printed: the texts between the markers and the token counts.
    struct Shown {
        var line: String, prompt: String, chosen: String, rejected: String, truncation: String
        var promptTokens: Int, chosenTokens: Int, rejectedTokens: Int
    }

    func examples(_ stdout: String) -> [Shown] {
        stdout.components(separatedBy: "== example ").dropFirst().map { block in
            func between(_ a: String, _ b: String) -> String {
                let after = block.components(separatedBy: a)[1]
                return after.components(separatedBy: b)[0]
            }
            func count(_ part: String) -> Int { Int(part.prefix { $0.isNumber })! }
            let promptPart = between("-- prompt, ", "-- chosen, "), chosenPart = between("-- chosen, ", "-- rejected, ")
            let rejectedPart = between("-- rejected, ", "-- truncation: ")
            func text(_ part: String) -> String {
                let body = part.components(separatedBy: ":\n").dropFirst().joined(separator: ":\n")
                return String(body.dropLast())  // the newline after the text
            }
            return Shown(line: String(block.prefix { $0 != "\n" }),
                         prompt: text(promptPart), chosen: text(chosenPart), rejected: text(rejectedPart),
                         truncation: String(between("-- truncation: ", "\n")),
                         promptTokens: count(promptPart), chosenTokens: count(chosenPart), rejectedTokens: count(rejectedPart))
        }
    }

    /// TRL's token ids of the fixture pairs (tools/make_model_fixtures.py) and the rows they come from.
    func trlTokens() throws -> (tokens: [[String: Any]], rows: [[String: String]]) {
        let tokens = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.model("llama-tied") + "/pairs.tokens.json"))) as! [[String: Any]]
        let rows = try String(contentsOfFile: pairs, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: String]
        }
        return (tokens, rows)
    }

    func testShowsEachPairAsTRLTokenizesIt() throws {
        let r = try ProcessRunner.dpoDist(["inspect", "--model", model, "--data", pairs, "-n", "5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let (tokens, rows) = try trlTokens()
        let shown = examples(r.stdout)
        XCTAssertEqual(shown.count, 5)
        for (i, (s, (t, row))) in zip(shown, zip(tokens, rows)).enumerated() {
            XCTAssertEqual(s.line, "\(i + 1): \(pairs):\(i + 1)")
            XCTAssertEqual(s.promptTokens, (t["prompt_ids"] as! [Int]).count, "pair \(i + 1)")
            XCTAssertEqual(s.chosenTokens, (t["chosen_ids"] as! [Int]).count, "pair \(i + 1)")
            XCTAssertEqual(s.rejectedTokens, (t["rejected_ids"] as! [Int]).count, "pair \(i + 1)")
            // The prompt ends at the marker and each completion starts at one; together they are the
            // row's text with the EOS string appended (TRL appends it unless the text ends with it).
            XCTAssertTrue(s.prompt.hasSuffix("▌") && s.chosen.hasPrefix("▌") && s.rejected.hasPrefix("▌"), "pair \(i + 1)")
            func withEOS(_ x: String) -> String { x.hasSuffix("<|endoftext|>") ? x : x + "<|endoftext|>" }
            let prompt = String(s.prompt.dropLast())
            XCTAssertEqual(prompt + String(s.chosen.dropFirst()), row["prompt"]! + withEOS(row["chosen"]!), "pair \(i + 1)")
            XCTAssertEqual(prompt + String(s.rejected.dropFirst()), row["prompt"]! + withEOS(row["rejected"]!), "pair \(i + 1)")
            XCTAssertEqual(s.truncation, "none")
        }
        XCTAssertTrue(r.stdout.contains("== \(pairs): 5 rows, 5 pairs to train on\ntruncated: 0 "), r.stdout)
        // The fixture model's config.json says 256 positions; TRL's default max_length is 1024.
        XCTAssertTrue(r.stdout.contains("warning: max_length 1024 is above the model's max_position_embeddings 256"), r.stdout)
        XCTAssertTrue(r.stdout.contains("(no pair here is longer)"), r.stdout)
    }

    /// max_length from --config, max_prompt_length from a flag (a flag overrides the file, as for
    /// train); the expected counts follow TRL's length rules applied to TRL's token counts.
    func testTruncatedAndDroppedCountsFollowTheLengthRules() throws {
        let (tokens, _) = try trlTokens()
        let maxLength = 28, maxPrompt = 18
        var promptCut = 0, dropped = 0, cut = 0
        for t in tokens {
            let p = (t["prompt_ids"] as! [Int]).count
            let c = (t["chosen_ids"] as! [Int]).count, r = (t["rejected_ids"] as! [Int]).count
            if p > maxPrompt { promptCut += 1 }
            let kept = min(p, maxPrompt)
            if kept >= maxLength { dropped += 1; continue }
            if kept + max(c, r) > maxLength { cut += 1 }
        }
        XCTAssertTrue(promptCut > 0 && cut > 0, "the lengths should exercise both rules")
        let config = Fixtures.temporaryDirectory("inspect") + "/dpo.yaml"
        try "model: \(model)\ntrain_file: \(pairs)\nmax_length: \(maxLength)\nmax_prompt_length: 4\n".write(toFile: config, atomically: true, encoding: .utf8)
        let r = try ProcessRunner.dpoDist(["inspect", "--config", config, "--max-prompt-length", "\(maxPrompt)", "-n", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let kept = tokens.count - dropped
        XCTAssertTrue(r.stdout.contains("== \(pairs): \(tokens.count) rows, \(kept) pairs to train on\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("truncated: \(promptCut + cut) (prompt cut to max_prompt_length \(maxPrompt): \(promptCut); "
                                        + "chosen or rejected cut to max_length \(maxLength): \(cut))"), r.stdout)
        XCTAssertTrue(r.stdout.contains("dropped: \(dropped) (prompt alone fills max_length: \(dropped); invalid rows skipped: 0)"), r.stdout)
        // Pair 1: a 20-token prompt keeps its last 18, and its 30-token rejected completion keeps 10.
        let first = try XCTUnwrap(examples(r.stdout).first)
        XCTAssertEqual((tokens[0]["prompt_ids"] as! [Int]).count, 20)
        XCTAssertEqual([first.promptTokens, first.chosenTokens, first.rejectedTokens], [18, 8, 10])
        XCTAssertEqual(first.truncation, "prompt: first 2 of 20 tokens cut (max_prompt_length 18); rejected: 20 of 30 completion tokens cut (max_length 28)")
    }

    /// Rows of {"question","chosen","rejected"} train with an implicit prompt: said by inspect, and by
    /// train once at its start (rank 0 of 2).
    func testUnusedFieldsAndImplicitPromptsWarnInInspectAndTrain() throws {
        let dir = Fixtures.temporaryDirectory("inspect-question")
        let data = dir + "/qa.jsonl"
        try """
        {"question": "What is 2+2?", "chosen": "4", "rejected": "5"}
        {"question": "Capital of France?", "chosen": "Paris, of course.", "rejected": "Paris? No idea."}
        {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "id": 7}
        {"chosen": "The answer is that it depends on the day.", "rejected": "The answer is that it depends on the weather."}

        """.write(toFile: data, atomically: true, encoding: .utf8)
        let expected = [
            "warning: \(data): fields \"id\" (1 row), \"question\" (2 rows) not used: only \"prompt\", \"chosen\" and \"rejected\" are read",
            "warning: \(data): 3 of 4 row(s) have no \"prompt\": each trains with the common prefix of chosen and rejected as its prompt "
                + "(name the prompt field \"prompt\" if the rows have one)",
            "warning: \(data): 1 implicit prompt(s) are empty (chosen and rejected share no start), line 1",
            "warning: \(data): 1 implicit prompt(s) are shorter than 10 characters, line 2",
        ]
        let r = try ProcessRunner.dpoDist(["inspect", "--model", model, "--data", data, "--max-length", "256", "-n", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let warnings = r.stdout.split(separator: "\n").filter { $0.hasPrefix("warning: ") }.map(String.init)
        XCTAssertEqual(warnings, expected)
        // Row 1's prompt is empty: the whole of both texts is completion.
        let first = try XCTUnwrap(examples(r.stdout).first)
        XCTAssertEqual(first.prompt, "▌")
        XCTAssertEqual([first.chosen, first.rejected], ["▌4<|endoftext|>", "▌5<|endoftext|>"])
        // "Paris" is the implicit prompt of row 2 (TRL's extract_prompt: the common prefix).
        XCTAssertEqual(examples(r.stdout)[1].prompt, "Paris▌")

        var a = TrainingRuns.arguments("inspect-train", model: "llama-tied", steps: 1, perDevice: 1)
        a.trainFile = data
        a.maxLength = 256
        let t = try ProcessRunner.dpoDist(["train", "--config", try TrainingRuns.configFile(a), "--simulate-ranks", "2"])
        XCTAssertEqual(t.status, 0, t.stderr)
        for line in expected {
            XCTAssertEqual(t.stderr.components(separatedBy: line + "\n").count - 1, 1, "train prints once: \(line)\n\(t.stderr)")
        }
        XCTAssertFalse(t.stderr.contains("max_position_embeddings"), "max_length 256 is the model's own limit")
    }

    func testBadArgumentsEndWithOneLine() throws {
        let r = try ProcessRunner.dpoDist(["inspect", "--data", pairs])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: --model is required (or \"model:\" in the --config file)\n")
        let missing = try ProcessRunner.dpoDist(["inspect", "--model", model, "--data", pairs + ".none"])
        XCTAssertEqual(missing.stderr, "error: \(pairs).none: no such file\n")
    }
}
