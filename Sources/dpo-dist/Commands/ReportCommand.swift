import ArgumentParser
import DPOTraining
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUN_DIR/report.html: curves, the comparison with the reference over every eval pair, the run's arguments and machine.",
        discussion: """
        One self-contained HTML file (inline SVG, no script, nothing fetched: it opens from disk), made from what \
        `train` or `eval` saved in RUN_DIR: metrics.jsonl (train and eval curves), eval_metrics.json, \
        eval_records.jsonl (each eval pair's reward margin and both models' greedy completions), training_args.yaml \
        or eval_args.yaml, and run_machine.json. `train` and `eval` write it at their end; run this during a run \
        or after changing nothing. What is missing is said in the page.
        """)

    @Argument(help: ArgumentHelp("The output directory of a train or eval run.", valueName: "RUN_DIR")) var runDir: String

    func run() throws {
        try runReportingErrors {
            let path = try HTMLReport.write(runDirectory: runDir)
            note("wrote \(path)")
        }
    }
}
