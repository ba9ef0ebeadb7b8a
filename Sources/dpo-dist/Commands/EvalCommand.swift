import ArgumentParser
import DPOComm
import DPOSupport
import DPOTraining
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Compare a policy with a reference on preference pairs: DPO eval metrics, KL, and a side-by-side report.",
        discussion: """
        Prints the eval metrics (TRL names with the eval_ prefix, and eval_kl: the KL divergence of the policy \
        from the reference per completion token) as JSON, and writes OUTPUT_DIR/eval_metrics.json and \
        OUTPUT_DIR/eval_report.md (greedy and sampled completions of both models for a few prompts), \
        OUTPUT_DIR/eval_records.jsonl (each pair's log-probs, reward margin and both models' greedy completions), \
        OUTPUT_DIR/eval_args.yaml, OUTPUT_DIR/run_machine.json and OUTPUT_DIR/report.html (see `dpo-dist report`).
        """)

    @Option(help: "The policy model directory, or a PEFT LoRA adapter directory.") var model: String
    @Option(help: "The reference model directory (or adapter directory).") var refModel: String
    @Option(help: "Preference pairs (JSONL or JSON array).") var data: String
    @Option(help: "Where eval_metrics.json, eval_report.md and report.html go.") var outputDir: String
    @Option(help: "DPO beta for the rewards.") var beta = 0.1
    @Option(help: "Loss type(s), comma-separated, for eval_loss.") var lossType = "sigmoid"
    @Option(help: "Pairs per forward pass.") var batchSize = 8
    @Option(help: "Keep the first max-length tokens of each sequence.") var maxLength = 1024
    @Option(help: "Tokens generated per completion in the report.") var maxNewTokens = 64
    @Option(help: "Prompts in the report.") var reportPrompts = 4
    @Option(help: "Seed of the sampled completions.") var seed: UInt64 = 42
    @Flag(inversion: .prefixedNo, help: "Compute each pair's prompt once for both completions (the same numbers up to rounding).")
    var sharePrompt = true
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try runReportingErrors {
            threadOptions.apply()
            // The eval is a DPO run's eval: its options read as `train` reads the same keys.
            let args = try TrainingArguments.load(yamlFile: nil, overrides: [
                ("model", model), ("ref_model", refModel), ("train_file", data), ("eval_file", data),
                ("output_dir", outputDir), ("beta", "\(beta)"), ("loss_type", lossType),
                ("per_device_eval_batch_size", "\(batchSize)"), ("max_length", "\(maxLength)"),
                ("max_new_tokens", "\(maxNewTokens)"), ("seed", "\(seed)"), ("share_prompt", "\(sharePrompt)"),
            ])
            try args.validate(for: .dpo)
            let trainer = try Trainer.dpo(args: args, comm: SingleProcessCommunicator())
            guard let objective = trainer.objective as? DPOObjective, let sums = try objective.evaluate() else { return }
            let metrics = [("eval_loss", sums[.loss])] + objective.metrics(sums, prefix: "eval_")
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            var line = MetricsLine()
            for (k, v) in metrics { line.add(k, v) }
            print(line.json)
            try OutputFile.write(line.json + "\n", to: outputDir + "/eval_metrics.json")
            try OutputFile.write(args.yaml, to: outputDir + "/eval_args.yaml")
            try objective.writeReport(outputDir: outputDir, metrics: metrics, prompts: reportPrompts,
                                      title: "\(model) against \(refModel)")
            note("wrote \(outputDir)/eval_metrics.json, \(outputDir)/eval_report.md and \(outputDir)/\(HTMLReport.fileName)")
        }
    }
}
