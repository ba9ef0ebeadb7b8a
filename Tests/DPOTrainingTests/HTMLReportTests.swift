import DPOSupport
import DPOTestSupport
import DPOTraining
import Foundation
import XCTest

/// report.html from run directories written by hand: the counts, the escaping, the charts' mapping
/// of values to points, and what a directory without some files gives.
final class HTMLReportTests: XCTestCase {
    /// Five pairs whose outcomes are worked out here by hand (see each line's comment).
    func records() -> [EvalRecord] {
        func r(_ i: Int, chosen: String, rejected: String, policy: String, policyTokens: Int, ref: String, refTokens: Int,
               margin: Double, chosenTokens: Int, rejectedTokens: Int) -> EvalRecord {
            EvalRecord(index: i, line: i + 1, prompt: "prompt \(i) =", chosen: chosen, rejected: rejected,
                       chosenTokens: chosenTokens, rejectedTokens: rejectedTokens,
                       policyLogpsChosen: -1, policyLogpsRejected: -2, refLogpsChosen: -1.5, refLogpsRejected: -1.5,
                       rewardChosen: margin, rewardRejected: 0, policyGreedy: policy, policyGreedyTokens: policyTokens,
                       refGreedy: ref, refGreedyTokens: refTokens)
        }
        return [
            // policy: chosen; reference: rejected
            r(0, chosen: " A", rejected: " B", policy: " A", policyTokens: 2, ref: " B", refTokens: 1, margin: 0.5, chosenTokens: 2, rejectedTokens: 2),
            // policy: chosen (whitespace around it); reference: neither
            r(1, chosen: " tao", rejected: " oat", policy: "tao \n", policyTokens: 3, ref: " ota", refTokens: 1, margin: -0.25, chosenTokens: 3, rejectedTokens: 3),
            // policy: rejected; reference: chosen
            r(2, chosen: " x", rejected: " y", policy: " y", policyTokens: 1, ref: " x", refTokens: 1, margin: 1.0, chosenTokens: 2, rejectedTokens: 4),
            // policy: neither (markup that must be escaped); reference: neither (empty)
            r(3, chosen: " 12", rejected: " 21", policy: "<script>alert(1)</script>", policyTokens: 5, ref: "", refTokens: 0, margin: 0, chosenTokens: 3, rejectedTokens: 3),
            // both chosen
            r(4, chosen: " UP", rejected: " up", policy: " UP", policyTokens: 2, ref: " UP", refTokens: 2, margin: 2.0, chosenTokens: 2, rejectedTokens: 2),
        ]
    }

    /// Four train steps and two evals, as metrics.jsonl writes them.
    let metricsText = """
    {"step": 1, "epoch": 0.25, "loss": 0.69, "learning_rate": 0.001, "rewards/margins": 0.0, "rewards/accuracies": 0.0, "logps/chosen": -10.0, "logps/rejected": -12.0}
    {"step": 2, "epoch": 0.5, "loss": 0.6, "learning_rate": 0.00075, "rewards/margins": 0.2, "rewards/accuracies": 0.5, "logps/chosen": -9.5, "logps/rejected": -12.5}
    {"step": 2, "epoch": 0.5, "eval_loss": 0.65, "eval_rewards/margins": 0.1, "eval_kl": 0.01, "eval_rewards/accuracies": 0.6}
    {"step": 3, "epoch": 0.75, "loss": 0.55, "learning_rate": 0.0005, "rewards/margins": 0.4, "rewards/accuracies": 1.0, "logps/chosen": -9.0, "logps/rejected": -13.0}
    {"step": 4, "epoch": 1.0, "loss": 0.4, "learning_rate": 0.00025, "rewards/margins": 0.6, "rewards/accuracies": 1.0, "logps/chosen": -8.0, "logps/rejected": -14.0}
    {"step": 4, "epoch": 1.0, "eval_loss": 0.5, "eval_rewards/margins": 0.3, "eval_kl": 0.04, "eval_rewards/accuracies": 0.8}

    """

    func runDirectory(metrics: Bool = true, records: Bool = true) throws -> String {
        let dir = Fixtures.temporaryDirectory("html-report")
        if metrics { try metricsText.write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8) }
        if records { try EvalRecords.write(self.records(), to: dir + "/" + EvalRecords.fileName) }
        try "beta: 0.1\nlearning_rate: 0.001\n".write(toFile: dir + "/training_args.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func report(_ dir: String) throws -> String {
        let path = try HTMLReport.write(runDirectory: dir)
        XCTAssertEqual(path, dir + "/report.html")
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    func cell(_ html: String, _ name: String) -> String? {
        guard let r = html.range(of: "data-cell=\"\(name)\">") else { return nil }
        return String(html[r.upperBound...].prefix { $0 != " " && $0 != "<" })
    }

    func testCountsOfAKnownRecordSet() throws {
        let html = try report(try runDirectory())
        // By hand from the comments in `records()`: policy chosen 0, 1, 4; rejected 2; neither 3.
        XCTAssertEqual(cell(html, "policy-chosen"), "3")
        XCTAssertEqual(cell(html, "policy-rejected"), "1")
        XCTAssertEqual(cell(html, "policy-neither"), "1")
        // Reference: chosen 2, 4; rejected 0; neither 1, 3.
        XCTAssertEqual(cell(html, "reference-chosen"), "2")
        XCTAssertEqual(cell(html, "reference-rejected"), "1")
        XCTAssertEqual(cell(html, "reference-neither"), "2")
        // Mean greedy lengths: (2+3+1+5+2)/5 and (1+1+1+0+2)/5.
        XCTAssertEqual(cell(html, "policy-length"), "2.60")
        XCTAssertEqual(cell(html, "reference-length"), "1.00")
        // Margins 0.5, -0.25, 1, 0, 2: three above 0.
        XCTAssertEqual(cell(html, "margin-positive"), "3")
        XCTAssertTrue(html.contains("(60.0%)"), "3 of 5 as a share")
        // Data lengths: chosen (2+3+2+3+2)/5, rejected (2+3+4+3+2)/5.
        XCTAssertTrue(html.contains("chosen completions 2.40 tokens on average, rejected 2.80"))
    }

    func testMarginHistogramCountsEachBin() throws {
        let page = try MarkupElements(try report(try runDirectory()))
        let bars = page.all("rect").filter { $0.attributes["class"] == "bar" }
        // 5 margins: ceil(sqrt 5) = 3 bins of width 0.75 over [-0.25, 2]: {-0.25, 0}, {0.5, 1}, {2}.
        XCTAssertEqual(bars.compactMap { $0.attributes["data-count"] }, ["2", "2", "1"])
        XCTAssertEqual(bars.compactMap { $0.attributes["data-lo"].flatMap(Double.init) }, [-0.25, 0.5, 1.25])
    }

    func testCompletionsAreEscaped() throws {
        let html = try report(try runDirectory())
        XCTAssertFalse(html.contains("<script"), "a completion's markup must not reach the page as markup")
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        // The escaped text reads back as the completion.
        let page = try MarkupElements(html)
        XCTAssertTrue(page.all("td").contains { $0.text == "<script>alert(1)</script>" })
    }

    /// The whole page parses as XML, so every SVG inside it does too; one chart per logged metric.
    func testThePageIsWellFormedWithAChartPerLoggedMetric() throws {
        let page = try MarkupElements(try report(try runDirectory()))
        let charted = page.all("figure").compactMap { $0.attributes["data-metric"] }
        XCTAssertEqual(charted, ["loss", "rewards/margins", "rewards/accuracies", "kl", "logps/chosen", "logps/rejected", "learning_rate"])
        XCTAssertEqual(page.all("svg").count, 8, "seven curves and the margin histogram")
        for metric in charted {
            XCTAssertFalse(page.all("text", metric: metric).filter { $0.attributes["class"] == "tick" }.isEmpty, "\(metric): axis labels")
        }
        XCTAssertTrue(page.all("pre").contains { $0.text.contains("learning_rate: 0.001") }, "the arguments")
    }

    /// The polylines' points are the metrics' values through the axes: x from the first to the last
    /// step across the plot's width, y from 5% of the values' span below the smallest value of the
    /// chart's series to 5% above the largest, up its height (SVG's y grows downwards).
    func testPolylinePointsAreTheMetricsThroughTheAxisMapping() throws {
        let page = try MarkupElements(try report(try runDirectory()))
        let cases: [(metric: String, train: [(Double, Double)], eval: [(Double, Double)])] = [
            ("loss", [(1, 0.69), (2, 0.6), (3, 0.55), (4, 0.4)], [(2, 0.65), (4, 0.5)]),
            ("learning_rate", [(1, 0.001), (2, 0.00075), (3, 0.0005), (4, 0.00025)], []),
            ("kl", [], [(2, 0.01), (4, 0.04)]),
        ]
        for c in cases {
            let plot = try XCTUnwrap(page.all("rect", metric: c.metric).first { $0.attributes["class"] == "plot" }, c.metric)
            let (px, py, pw, ph) = (Double(plot.attributes["x"]!)!, Double(plot.attributes["y"]!)!,
                                    Double(plot.attributes["width"]!)!, Double(plot.attributes["height"]!)!)
            let all = c.train + c.eval
            let (x0, x1) = (all.map(\.0).min()!, all.map(\.0).max()!), (lo, hi) = (all.map(\.1).min()!, all.map(\.1).max()!)
            let (y0, y1) = (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            for (name, values) in [("train", c.train), ("eval", c.eval)] {
                let line = page.all("polyline", metric: c.metric).first { $0.attributes["data-series"] == name }
                guard !values.isEmpty else { XCTAssertNil(line, "\(c.metric): no \(name) series"); continue }
                let points = try XCTUnwrap(line?.attributes["points"], "\(c.metric) \(name)")
                    .split(separator: " ").map { $0.split(separator: ",").map { Double($0)! } }
                XCTAssertEqual(points.count, values.count, "\(c.metric) \(name)")
                for (p, (step, v)) in zip(points, values) {
                    XCTAssertEqual(p[0], px + (step - x0) / (x1 - x0) * pw, accuracy: 0.006, "\(c.metric) \(name) step \(step)")
                    XCTAssertEqual(p[1], py + ph - (v - y0) / (y1 - y0) * ph, accuracy: 0.006, "\(c.metric) \(name) step \(step)")
                }
            }
        }
    }

    func testMissingPiecesAreSaidNotFatal() throws {
        let html = try report(try runDirectory(metrics: false, records: false))
        XCTAssertTrue(html.contains("No metrics.jsonl in this directory"))
        XCTAssertTrue(html.contains("No eval_records.jsonl"))
        XCTAssertTrue(html.contains("No eval metrics"))
        XCTAssertTrue(html.contains("No run_machine.json"))
        XCTAssertNoThrow(try MarkupElements(html))
        // metrics.jsonl that exists but has no line yet.
        let dir = try runDirectory(metrics: false, records: false)
        try "".write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        XCTAssertTrue(try report(dir).contains("metrics.jsonl is empty"))
    }

    func testWhatIsNotARunDirectoryIsRefused() throws {
        let empty = Fixtures.temporaryDirectory("not-a-run")
        try "x".write(toFile: empty + "/notes.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HTMLReport.write(runDirectory: empty)) {
            XCTAssertTrue(($0 as? DPOError)?.message.hasPrefix("\(empty): not a run directory") == true, "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty + "/report.html"))
        XCTAssertThrowsError(try HTMLReport.write(runDirectory: empty + "/missing")) {
            XCTAssertEqual(($0 as? DPOError)?.message, "\(empty)/missing: no such directory")
        }
        XCTAssertThrowsError(try HTMLReport.write(runDirectory: empty + "/notes.txt")) {
            XCTAssertTrue(($0 as? DPOError)?.message.hasPrefix("\(empty)/notes.txt: is not a directory") == true, "\($0)")
        }
        // A damaged metrics line is named, not skipped.
        let damaged = try runDirectory()
        try (metricsText + "{\"step\": 5, \"loss\": \n").write(toFile: damaged + "/metrics.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HTMLReport.write(runDirectory: damaged)) {
            XCTAssertTrue(($0 as? DPOError)?.message.hasPrefix("\(damaged)/metrics.jsonl:7: not JSON") == true, "\($0)")
        }
    }

    func testRecordsReadBackAsWritten() throws {
        let dir = try runDirectory()
        XCTAssertEqual(try EvalRecords.read(dir + "/" + EvalRecords.fileName), records())
        try "{\"index\": 0}\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try EvalRecords.read(dir + "/bad.jsonl")) {
            XCTAssertTrue(($0 as? DPOError)?.message.hasPrefix("\(dir)/bad.jsonl:1: not an eval record") == true, "\($0)")
        }
    }
}
