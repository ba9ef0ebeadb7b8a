import ArgumentParser
import ChatTemplates
import DPOData
import DPOModel
import DPOSupport
import Foundation
import Tokenization

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue prompts with a model (and, with --compare-with, a second model beside it).")

    @Option(help: "The model directory, or a PEFT LoRA adapter directory.") var model: String
    @Option(help: "A second model (or adapter) directory to print beside the first (e.g. the reference).") var compareWith: String?
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
                let loaded = try AdapterDirectory.loadModelOrAdapter(dir, frozen: true)
                models.append((dir, loaded.model, try Tokenizer(directory: loaded.tokenizerDirectory)))
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
                    try ModelVocabulary(size: m.config.vocabSize).check(ids, at: "\(name): the prompt \"\(p)\"")
                    let out = Generator.generate(model: m, prompt: ids, stopTokens: Set([tokenizer.eosTokenID].compactMap { $0 }),
                                                 settings: settings)
                    print("[\(name)] \(tokenizer.decode(out, skipSpecialTokens: true))")
                }
            }
        }
    }
}
