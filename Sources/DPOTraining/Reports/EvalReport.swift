import DPOData
import DPOModel
import DPOSupport
import Foundation
import Tokenization

/// OUTPUT_DIR/eval_report.md: reference and policy completions side by side for a few eval
/// prompts, greedy and sampled, with the eval metrics on top.
public enum EvalReport {
    public static func write(path: String, policy: Transformer, reference: Transformer?, tokenizer: Tokenizer,
                             pairs: [PreferencePair], metrics: [(String, Double)], prompts: Int = 4,
                             maxNewTokens: Int, seed: UInt64, title: String) throws {
        var md = "# \(title)\n\n"
        if !metrics.isEmpty {
            md += "| metric | value |\n|---|---|\n"
            for (k, v) in metrics { md += "| `\(k)` | \(String(format: "%.6g", v)) |\n" }
            md += "\n"
        }
        var stops = Set<Int>()
        if let eos = tokenizer.eosTokenID { stops.insert(eos) }
        let greedy = GenerationSettings(maxNewTokens: maxNewTokens, temperature: 0, seed: seed)
        let sampled = GenerationSettings(maxNewTokens: maxNewTokens, temperature: 0.7, topP: 0.9, seed: seed)
        for (n, pair) in pairs.prefix(prompts).enumerated() {
            let promptIDs = try promptIDs(pair, tokenizer: tokenizer)
            guard !promptIDs.isEmpty else { continue }
            func text(_ model: Transformer, _ s: GenerationSettings) -> String {
                let ids = Generator.generate(model: model, prompt: promptIDs, stopTokens: stops, settings: s)
                return tokenizer.decode(ids, skipSpecialTokens: true)
            }
            md += "## Prompt \(n + 1)\n\n```text\n\(pair.prompt)\n```\n\n"
            md += "- chosen in the data: `\(inline(pair.chosen))`\n- rejected in the data: `\(inline(pair.rejected))`\n\n"
            md += "| | greedy | sampled (T 0.7, top-p 0.9) |\n|---|---|---|\n"
            if let reference {
                md += "| reference | `\(inline(text(reference, greedy)))` | `\(inline(text(reference, sampled)))` |\n"
            }
            md += "| policy | `\(inline(text(policy, greedy)))` | `\(inline(text(policy, sampled)))` |\n\n"
        }
        try OutputFile.write(md, to: path)
    }

    /// The prompt a model continues: a conversation rendered with the generation prompt, or the text.
    static func promptIDs(_ pair: PreferencePair, tokenizer: Tokenizer) throws -> [Int] {
        if let c = pair.conversation {
            return tokenizer.encode(try ChatRendering.render(c.prompt, tokenizer: tokenizer, addGenerationPrompt: true),
                                    addSpecialTokens: false)
        }
        return tokenizer.encode(pair.prompt)
    }

    /// One line of Markdown table cell text.
    static func inline(_ s: String) -> String {
        s.replacingOccurrences(of: "\n", with: "⏎").replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "`", with: "'")
    }
}
