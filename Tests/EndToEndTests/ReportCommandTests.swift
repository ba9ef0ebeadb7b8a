import DPOTestSupport
import Foundation
import XCTest

/// report.html as a user gets it: written at the end of `train` and `eval`, again by `dpo-dist report`.
final class ReportCommandTests: XCTestCase {
    let evalFile = Fixtures.model("llama-tied") + "/pairs.jsonl"

    func cell(_ html: String, _ name: String) -> Int? {
        guard let r = html.range(of: "data-cell=\"\(name)\">") else { return nil }
        return Int(html[r.upperBound...].prefix { $0.isNumber })
    }

    func testTrainAndEvalWriteTheReportAndReportRewritesIt() throws {
        let pairs = try String(contentsOfFile: evalFile, encoding: .utf8).split(separator: "\n").count
        let out = Fixtures.temporaryDirectory("report-train") + "/run"
        let model = Fixtures.model("llama-tied") + "/model"
        let train = try ProcessRunner.dpoDist([
            "train", "--model", model, "--train-file", Fixtures.root + "/trl/train.jsonl", "--eval-file", evalFile,
            "--output-dir", out, "--max-steps", "3", "--eval-steps", "2", "--logging-steps", "1",
            "--per-device-train-batch-size", "2", "--learning-rate", "1e-3", "--max-new-tokens", "4",
        ])
        XCTAssertEqual(train.status, 0, train.stderr)
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        let page = try MarkupElements(html)
        XCTAssertEqual(page.all("figure").compactMap { $0.attributes["data-metric"] },
                       ["loss", "rewards/margins", "rewards/accuracies", "kl", "logps/chosen", "logps/rejected", "learning_rate"])
        // Every eval pair is counted once per model.
        for model in ["policy", "reference"] {
            let counts = ["chosen", "rejected", "neither"].compactMap { cell(html, "\(model)-\($0)") }
            XCTAssertEqual(counts.count, 3, model)
            XCTAssertEqual(counts.reduce(0, +), pairs, model)
        }
        // The records' margins agree with the final eval's accuracy, computed apart by the eval.
        let last = try XCTUnwrap(try Metrics.read(out).last { $0["eval_rewards/accuracies"] != nil })
        XCTAssertEqual(Double(try XCTUnwrap(cell(html, "margin-positive"))), last["eval_rewards/accuracies"]! * Double(pairs), accuracy: 1e-9)
        XCTAssertTrue(page.all("pre").contains { $0.text.contains("eval_file: ") }, "training_args.yaml")
        XCTAssertTrue(page.all("th").contains { $0.text == "ranks" }, "the machine")

        try FileManager.default.removeItem(atPath: out + "/report.html")
        let report = try ProcessRunner.dpoDist(["report", out])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertEqual(report.stderr, "wrote \(out)/report.html\n")
        XCTAssertEqual(try String(contentsOfFile: out + "/report.html", encoding: .utf8).count, html.count)

        let evalOut = Fixtures.temporaryDirectory("report-eval") + "/eval"
        let eval = try ProcessRunner.dpoDist(["eval", "--model", out, "--ref-model", model, "--data", evalFile,
                                              "--output-dir", evalOut, "--max-new-tokens", "4"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let evalHTML = try String(contentsOfFile: evalOut + "/report.html", encoding: .utf8)
        XCTAssertNoThrow(try MarkupElements(evalHTML))
        XCTAssertTrue(evalHTML.contains("No metrics.jsonl in this directory"))
        XCTAssertTrue(evalHTML.contains("eval_args.yaml"))
        XCTAssertEqual(["chosen", "rejected", "neither"].compactMap { cell(evalHTML, "policy-\($0)") }.reduce(0, +), pairs)
    }

    func testADirectoryThatIsNoRunIsRefusedInOneLine() throws {
        let dir = Fixtures.temporaryDirectory("report-none")
        for (path, fragment) in [(dir, "not a run directory"), (dir + "/missing", "no such directory")] {
            let r = try ProcessRunner.dpoDist(["report", path])
            XCTAssertEqual(r.reason, .exit)
            XCTAssertEqual(r.status, 1)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("error: \(path): \(fragment)"), r.stderr)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/report.html"))
    }
}
