import ArgumentParser
import DPOCore
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Compare a policy with a reference on preference pairs: DPO eval metrics, KL, and a side-by-side report.",
        discussion: """
        Prints the eval metrics (TRL names with the eval_ prefix, and eval_kl: the KL divergence of the policy \
        from the reference per completion token) as JSON, and writes OUTPUT_DIR/eval_metrics.json and \
        OUTPUT_DIR/eval_report.md (greedy and sampled completions of both models for a few prompts).
        """)

    @Option(help: "The policy model directory.") var model: String
    @Option(help: "The reference model directory.") var refModel: String
    @Option(help: "Preference pairs (JSONL or JSON array).") var data: String
    @Option(help: "Where eval_metrics.json and eval_report.md go.") var outputDir: String
    @Option(help: "DPO beta for the rewards.") var beta = 0.1
    @Option(help: "Loss type(s), comma-separated, for eval_loss.") var lossType = "sigmoid"
    @Option(help: "Pairs per forward pass.") var batchSize = 8
    @Option(help: "Keep the first max-length tokens of each sequence.") var maxLength = 1024
    @Option(help: "Tokens generated per completion in the report.") var maxNewTokens = 64
    @Option(help: "Prompts in the report.") var reportPrompts = 4
    @Option(help: "Seed of the sampled completions.") var seed: UInt64 = 42
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try runReportingErrors {
            threadOptions.apply()
            var args = TrainingArguments()
            args.model = model
            args.refModel = refModel
            args.trainFile = data
            args.evalFile = data
            args.outputDir = outputDir
            args.beta = beta
            args.lossType = lossType.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            args.perDeviceEvalBatchSize = batchSize
            args.maxLength = maxLength
            args.maxNewTokens = maxNewTokens
            args.seed = seed
            try args.validate(for: .dpo)
            let trainer = try Trainer.dpo(args: args, comm: SingleProcessCommunicator())
            guard let objective = trainer.objective as? DPOObjective, let sums = objective.evaluate() else { return }
            let metrics = [("eval_loss", sums[.loss])] + objective.metrics(sums, prefix: "eval_")
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            var line = MetricsLine()
            for (k, v) in metrics { line.add(k, v) }
            print(line.json)
            try Data((line.json + "\n").utf8).write(to: URL(fileURLWithPath: outputDir + "/eval_metrics.json"))
            try objective.writeReport(outputDir: outputDir, metrics: metrics, prompts: reportPrompts,
                                      title: "\(model) against \(refModel)")
            note("wrote \(outputDir)/eval_metrics.json and \(outputDir)/eval_report.md")
        }
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue prompts with a model (and, with --compare-with, a second model beside it).")

    @Option(help: "The model directory.") var model: String
    @Option(help: "A second model directory to print beside the first (e.g. the reference).") var compareWith: String?
    @Option(help: "A prompt (repeat for several).") var prompt: [String] = []
    @Option(help: "A file of prompts, one per line.") var promptsFile: String?
    @Flag(help: "Wrap each prompt as a user message in the model's chat template.") var chat = false
    @Option(help: "Tokens to generate.") var maxNewTokens = 64
    @Option(help: "0 for greedy decoding.") var temperature = 0.0
    @Option(help: "Nucleus sampling threshold.") var topP = 1.0
    @Option(help: "Sampling seed.") var seed: UInt64 = 0
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try runReportingErrors {
            threadOptions.apply()
            var prompts = prompt
            if let promptsFile {
                guard let text = try? String(contentsOfFile: promptsFile, encoding: .utf8) else {
                    throw DPOError.file(promptsFile, "cannot read the prompts file")
                }
                prompts += text.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            }
            guard !prompts.isEmpty else { throw DPOError("give at least one --prompt or a --prompts-file") }
            var models: [(name: String, model: Transformer, tokenizer: Tokenizer)] = []
            for dir in [model] + (compareWith.map { [$0] } ?? []) {
                models.append((dir, try ModelDirectory.load(dir).model, try Tokenizer(directory: dir)))
            }
            let settings = GenerationSettings(maxNewTokens: maxNewTokens, temperature: temperature, topP: topP, seed: seed)
            for p in prompts {
                print("### \(p)")
                for (name, m, tokenizer) in models {
                    let ids = chat
                        ? tokenizer.encode(try ChatRendering.render([ChatMessage(role: "user", content: p)], tokenizer: tokenizer,
                                                                    addGenerationPrompt: true), addSpecialTokens: false)
                        : tokenizer.encode(p)
                    guard !ids.isEmpty else { throw DPOError("the prompt \"\(p)\" has no tokens") }
                    let out = Generator.generate(model: m, prompt: ids, stopTokens: Set([tokenizer.eosTokenID].compactMap { $0 }),
                                                 settings: settings)
                    print("[\(name)] \(tokenizer.decode(out, skipSpecialTokens: true))")
                }
            }
        }
    }
}
