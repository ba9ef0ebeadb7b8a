import DPOSupport
import Foundation

/// RUN_DIR/report.html: one self-contained page (inline SVG and CSS, no script, nothing fetched)
/// that `report`, and `train` and `eval` at their end, make from what the run saved:
/// - metrics.jsonl: train and eval curves (loss, rewards/margins, rewards/accuracies, KL, chosen and
///   rejected log-probs, learning rate);
/// - eval_metrics.json (`eval`) or the last eval line of metrics.jsonl: the final eval metrics;
/// - eval_records.jsonl (`EvalRecord`): over every eval pair, how often each model's greedy
///   completion is the chosen or the rejected text, mean lengths, the reward margins' histogram,
///   the completions side by side;
/// - training_args.yaml (or eval's eval_args.yaml) and run_machine.json (`RunMachine`).
/// What is missing is said in the page.
public enum HTMLReport {
    public static let fileName = "report.html"
    /// The files of a run directory; a directory with none of them is not one.
    public static let runFiles = ["metrics.jsonl", "training_args.yaml", "eval_metrics.json", EvalRecords.fileName,
                                  "eval_args.yaml", RunMachine.fileName]
    /// Rows of the side-by-side table; the counts above it cover every record.
    public static let tableRows = 500

    /// What a run directory holds for the report.
    public struct Inputs {
        /// metrics.jsonl's lines, numeric fields only; nil without the file.
        public var metrics: [[String: Double]]?
        /// The final eval metrics in the order they were written.
        public var evalMetrics: [(String, Double)] = []
        public var records: [EvalRecord]?
        /// training_args.yaml or eval_args.yaml: (file name, text).
        public var arguments: (String, String)?
        public var machine: RunMachine?
        public init() {}
    }

    /// Reads RUN_DIR, writes RUN_DIR/report.html, returns its path. A RUN_DIR that does not exist,
    /// is not a directory or holds none of `runFiles` is refused; a damaged file is an error naming it.
    @discardableResult
    public static func write(runDirectory: String) throws -> String {
        let inputs = try load(runDirectory: runDirectory)
        let path = runDirectory + "/" + fileName
        try OutputFile.write(render(inputs, title: "dpo-dist report: \(runDirectory)"), to: path)
        return path
    }

    public static func load(runDirectory dir: String) throws -> Inputs {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) else {
            throw DPOError.file(dir, "no such directory")
        }
        guard isDirectory.boolValue else { throw DPOError.file(dir, "is not a directory; give the output directory of a train or eval run") }
        func present(_ name: String) -> Bool { FileManager.default.fileExists(atPath: dir + "/" + name) }
        guard runFiles.contains(where: present) else {
            throw DPOError.file(dir, "not a run directory: it holds none of \(runFiles.joined(separator: ", "))")
        }
        var inputs = Inputs()
        var lastEval: [(String, Double)] = []
        if present("metrics.jsonl") {
            let lines = try numericFields(dir + "/metrics.jsonl")
            inputs.metrics = lines.map { Dictionary($0, uniquingKeysWith: { a, _ in a }) }
            lastEval = lines.last { $0.contains { $0.0 == "eval_loss" } } ?? []
        }
        if present("eval_metrics.json") { lastEval = try numericFields(dir + "/eval_metrics.json").first ?? [] }
        inputs.evalMetrics = lastEval.filter { $0.0.hasPrefix("eval_") }
        if present(EvalRecords.fileName) { inputs.records = try EvalRecords.read(dir + "/" + EvalRecords.fileName) }
        for name in ["training_args.yaml", "eval_args.yaml"] where inputs.arguments == nil && present(name) {
            do { inputs.arguments = (name, try String(contentsOfFile: dir + "/" + name, encoding: .utf8)) } catch {
                throw DPOError.file(dir + "/" + name, "cannot read: \(error.localizedDescription)")
            }
        }
        if present(RunMachine.fileName) { inputs.machine = try RunMachine.read(dir + "/" + RunMachine.fileName) }
        return inputs
    }

    /// The numeric fields of each JSON line of a file, in the order written.
    static func numericFields(_ path: String) throws -> [[(String, Double)]] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DPOError.file(path, "cannot read: \(error.localizedDescription)")
        }
        var lines: [[(String, Double)]] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy({ $0.isWhitespace }) {
            let parsed: OrderedJSON
            do { parsed = try OrderedJSON(parsing: Array(line.utf8)) } catch {
                throw DPOError.file("\(path):\(n + 1)", "not JSON (\((error as? DPOError)?.message ?? "\(error)"))")
            }
            guard case .object(let members) = parsed else { throw DPOError.file("\(path):\(n + 1)", "not a JSON object") }
            lines.append(members.compactMap { m in
                switch m.value {
                case .int(let v): return (m.key, Double(v))
                case .double(let v): return (m.key, v)
                default: return nil  // null (a non-finite value) and text fields
                }
            })
        }
        return lines
    }

    // MARK: - The page

    /// The charts: (metric as logged for training, title, y label). The eval curve is the same key
    /// with the eval_ prefix.
    static let curves: [(String, String, String)] = [
        ("loss", "Loss", "loss"),
        ("rewards/margins", "Reward margin (chosen − rejected)", "beta × log-ratio"),
        ("rewards/accuracies", "Reward accuracy (share with r_chosen > r_rejected)", "share of pairs"),
        ("kl", "KL(policy ‖ reference) per completion token", "nats per token"),
        ("logps/chosen", "Log-prob of the chosen completion", "summed log-prob"),
        ("logps/rejected", "Log-prob of the rejected completion", "summed log-prob"),
        ("learning_rate", "Learning rate", "learning rate"),
    ]

    public static func render(_ inputs: Inputs, title: String) -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8"/>
        <title>\(escapeHTML(title))</title>
        <style>
        \(style)
        </style>
        </head>
        <body>
        <h1>\(escapeHTML(title))</h1>

        """
        h += section("Final eval", finalEval(inputs))
        h += section("Training and eval curves", curvesSection(inputs.metrics))
        h += section("Greedy completions against the data, over every eval pair", outcomes(inputs.records))
        h += section("Side by side", sideBySide(inputs.records))
        h += section("Arguments", arguments(inputs.arguments))
        h += section("Machine", machine(inputs.machine))
        return h + "<p class=\"foot\">Written by dpo-dist from the files of the run directory.</p>\n</body>\n</html>\n"
    }

    static func section(_ heading: String, _ body: String) -> String {
        "<section>\n<h2>\(escapeHTML(heading))</h2>\n\(body)</section>\n"
    }

    static func missing(_ text: String) -> String { "<p class=\"missing\">\(escapeHTML(text))</p>\n" }

    static func finalEval(_ inputs: Inputs) -> String {
        guard !inputs.evalMetrics.isEmpty else {
            return missing("No eval metrics: the run had no eval_file, or it has not evaluated yet.")
        }
        var s = "<table class=\"metrics\">\n<tr><th>metric</th><th>value</th></tr>\n"
        for (k, v) in inputs.evalMetrics {
            s += "<tr><td><code>\(escapeHTML(k))</code></td><td class=\"num\">\(compactNumber(v))</td></tr>\n"
        }
        return s + "</table>\n"
    }

    static func curvesSection(_ metrics: [[String: Double]]?) -> String {
        guard let metrics else { return missing("No metrics.jsonl in this directory: no curves (an eval-only directory, or a run that has not logged yet).") }
        guard !metrics.isEmpty else { return missing("metrics.jsonl is empty: the run has not logged a step yet.") }
        let train = metrics.filter { $0["eval_loss"] == nil }, eval = metrics.filter { $0["eval_loss"] != nil }
        func points(_ lines: [[String: Double]], _ key: String) -> [(x: Double, y: Double)] {
            lines.compactMap { line in line[key].flatMap { y in line["step"].map { (x: $0, y: y) } } }
        }
        var s = "<div class=\"charts\">\n", absent: [String] = []
        for (key, title, yLabel) in curves {
            var series: [LineChart.Series] = []
            let t = points(train, key), e = points(eval, "eval_" + key)
            if !t.isEmpty { series.append(.init(name: "train", color: "#2166ac", points: t)) }
            if !e.isEmpty { series.append(.init(name: "eval", color: "#d6604d", points: e)) }
            guard !series.isEmpty else { absent.append(key); continue }
            s += "<figure data-metric=\"\(escapeHTML(key))\">\n"
            s += LineChart(title: title, xLabel: "step", yLabel: yLabel, series: series).svg
            s += "</figure>\n"
        }
        s += "</div>\n"
        if !absent.isEmpty {
            s += missing("Not logged by this run: \(absent.joined(separator: ", ")).")
        }
        return s
    }

    /// Counts of each model's greedy completions by outcome, as (chosen, rejected, neither).
    public static func outcomeCounts(_ completions: [(EvalRecord, String)]) -> [EvalRecord.Outcome: Int] {
        var counts: [EvalRecord.Outcome: Int] = [:]
        for (r, c) in completions { counts[r.outcome(of: c), default: 0] += 1 }
        return counts
    }

    static func outcomes(_ records: [EvalRecord]?) -> String {
        guard let records else {
            return missing("No \(EvalRecords.fileName): no eval at the end of a run (train without eval_file, a run that has not ended, or one from before dpo-dist wrote the records).")
        }
        guard !records.isEmpty else { return missing("\(EvalRecords.fileName) holds no pairs.") }
        let n = records.count
        func share(_ k: Int) -> String { String(format: "%.1f%%", 100 * Double(k) / Double(n)) }
        func mean(_ xs: [Int]) -> String { String(format: "%.2f", Double(xs.reduce(0, +)) / Double(max(xs.count, 1))) }
        var s = "<p>\(n) eval pairs; a greedy completion (at most max_new_tokens, ending at EOS) equals the chosen or the rejected completion when the texts are equal up to surrounding whitespace.</p>\n"
        s += "<table class=\"outcomes\">\n<tr><th>model</th><th>equals chosen</th><th>equals rejected</th><th>neither</th><th>mean greedy length (tokens)</th></tr>\n"
        var models: [(String, [(EvalRecord, String)], [Int])] = []
        let withReference = records.filter { $0.refGreedy != nil }
        if withReference.count == n {
            models.append(("reference", records.map { ($0, $0.refGreedy!) }, records.compactMap(\.refGreedyTokens)))
        }
        models.append(("policy", records.map { ($0, $0.policyGreedy) }, records.map(\.policyGreedyTokens)))
        for (name, completions, lengths) in models {
            let counts = outcomeCounts(completions)
            s += "<tr><th>\(name)</th>"
            for o in EvalRecord.Outcome.allCases {
                let k = counts[o] ?? 0
                s += "<td class=\"num\" data-cell=\"\(name)-\(o.rawValue)\">\(k) <span class=\"share\">(\(share(k)))</span></td>"
            }
            s += "<td class=\"num\" data-cell=\"\(name)-length\">\(mean(lengths))</td></tr>\n"
        }
        s += "</table>\n"
        if withReference.count != n { s += missing("No reference completions: the loss uses no reference model.") }
        s += "<p>In the data: chosen completions \(mean(records.map(\.chosenTokens))) tokens on average, rejected \(mean(records.map(\.rejectedTokens))) (the appended EOS counted).</p>\n"
        let margins = records.map(\.rewardMargin)
        let positive = margins.filter { $0 > 0 }.count
        let meanMargin = margins.reduce(0, +) / Double(n)
        s += "<p>Reward margin r_chosen − r_rejected above 0 for <span data-cell=\"margin-positive\">\(positive)</span> of \(n) pairs (\(share(positive))); mean margin \(compactNumber(meanMargin)). In the histogram, blue bins lie above 0 (the policy prefers the chosen completion more than the reference does), red ones below, a grey one across 0.</p>\n"
        s += "<figure>\n" + Histogram(title: "Reward margins of the eval pairs", xLabel: "r_chosen − r_rejected (beta × log-ratio difference)", values: margins).svg + "</figure>\n"
        return s
    }

    static func sideBySide(_ records: [EvalRecord]?) -> String {
        guard let records, !records.isEmpty else { return missing("No eval records, so no completions to show.") }
        let hasReference = records.allSatisfy { $0.refGreedy != nil }
        var s = "<p>Greedy completions; <span class=\"o-chosen\">green</span>: equals the chosen completion, <span class=\"o-rejected\">red</span>: equals the rejected one.\(records.count > tableRows ? " The first \(tableRows) of \(records.count) pairs." : "")</p>\n"
        s += "<table class=\"completions\">\n<tr><th>#</th><th>prompt</th><th>chosen</th><th>rejected</th>\(hasReference ? "<th>reference</th>" : "")<th>policy</th><th>margin</th></tr>\n"
        for r in records.prefix(tableRows) {
            func completion(_ text: String) -> String {
                "<td class=\"text o-\(r.outcome(of: text).rawValue)\">\(escapeHTML(text))</td>"
            }
            s += "<tr><td class=\"num\">\(r.index + 1)</td><td class=\"text\">\(escapeHTML(r.prompt))</td><td class=\"text\">\(escapeHTML(r.chosen))</td><td class=\"text\">\(escapeHTML(r.rejected))</td>"
            if hasReference, let ref = r.refGreedy { s += completion(ref) }
            s += completion(r.policyGreedy) + "<td class=\"num\">\(String(format: "%+.3f", r.rewardMargin))</td></tr>\n"
        }
        return s + "</table>\n"
    }

    static func arguments(_ arguments: (String, String)?) -> String {
        guard let (name, text) = arguments else { return missing("No training_args.yaml or eval_args.yaml in this directory.") }
        return "<p>\(escapeHTML(name)):</p>\n<pre>\(escapeHTML(text))</pre>\n"
    }

    static func machine(_ m: RunMachine?) -> String {
        guard let m else { return missing("No \(RunMachine.fileName): the run has not ended, or it is from before dpo-dist wrote it.") }
        let rows: [(String, String)] = [
            ("host", m.host), ("CPU", m.cpu), ("cores", "\(m.cores)"),
            ("memory", String(format: "%.1f GB", Double(m.memoryBytes) / 1e9)), ("operating system", m.operatingSystem),
            ("ranks", "\(m.ranks)"), ("OpenBLAS threads per rank", "\(m.blasThreads)"),
            ("OpenBLAS kernels", m.blasKernels), ("matrix products", m.matmul), ("written", m.date),
        ]
        return "<table class=\"machine\">\n" + rows.map { "<tr><th>\(escapeHTML($0))</th><td>\(escapeHTML($1))</td></tr>\n" }.joined() + "</table>\n"
    }

    /// No `<` or `&` in it, so the page is also well-formed XML.
    static let style = """
    body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1140px; color: #222; line-height: 1.4; }
    h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
    table { border-collapse: collapse; margin: 8px 0; }
    th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
    th { background: #f3f3f3; }
    td.num { text-align: right; font-variant-numeric: tabular-nums; }
    td.text { white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
    .share { color: #666; }
    .o-chosen { background: #d9f0d3; } .o-rejected { background: #fbd0c4; }
    .missing { color: #8a6d00; background: #fff8e1; padding: 6px 10px; border-left: 3px solid #e0b000; }
    .charts { display: flex; flex-wrap: wrap; gap: 12px; }
    figure { margin: 0; }
    pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 13px; }
    svg text { font-family: Helvetica, Arial, sans-serif; fill: #222; }
    svg .chart-title { font-size: 14px; font-weight: bold; } svg .tick { font-size: 11px; fill: #555; }
    svg .axis-label { font-size: 12px; } svg .legend { font-size: 12px; }
    .foot { color: #888; font-size: 12px; margin-top: 32px; }
    """
}
