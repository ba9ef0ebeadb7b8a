import ArgumentParser
import DPOModel
import DPOSupport
import Foundation

/// `dpo-dist init`: a tiny random Llama with its own byte-level BPE tokenizer, written as a Hugging
/// Face model directory. The starting point of the demo (init → SFT → DPO → eval) and of any
/// experiment that needs a model small enough to train in minutes.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a new random Llama with a freshly trained byte-level BPE tokenizer, or over a real tokenizer (a Hugging Face model directory).",
        discussion: """
        Weights are initialised as transformers does: normal(0, 0.02) for matrices and embeddings, \
        1 for RMSNorm weights. The tokenizer has <|endoftext|> (BOS and pad), <|im_start|> and \
        <|im_end|> (EOS, the end of a ChatML turn) at ids 0-2, the 256 bytes, and --merges BPE merges \
        learned from --tokenizer-from (default: a short built-in English text); it comes with a ChatML \
        chat template. With --tokenizer DIR the tokenizer files of DIR (tokenizer.json, \
        tokenizer_config.json, special_tokens_map.json, chat_template.jinja, generation_config.json) \
        are copied instead, and vocab_size and the BOS/EOS ids follow that tokenizer. \
        transformers' AutoModelForCausalLM and AutoTokenizer load the directory as it is.
        """)

    @Option(help: "The model directory to write (created if missing).")
    var output: String
    @Option(help: "hidden_size.")
    var hiddenSize = 64
    @Option(help: "intermediate_size (the SwiGLU width).")
    var intermediateSize = 192
    @Option(help: "num_hidden_layers.")
    var layers = 2
    @Option(help: "num_attention_heads (must divide --hidden-size).")
    var heads = 4
    @Option(help: "num_key_value_heads (must divide --heads).")
    var kvHeads = 2
    @Option(help: "max_position_embeddings.")
    var maxPositionEmbeddings = 512
    @Flag(inversion: .prefixedNo, help: "Share the embedding matrix with the LM head (tie_word_embeddings).")
    var tieWordEmbeddings = true
    @Option(help: "Seed of the weight initialisation.")
    var seed: UInt64 = 0
    @Option(help: "A UTF-8 text file to train the tokenizer's merges on (default: a short built-in English text).")
    var tokenizerFrom: String?
    @Option(help: ArgumentHelp("A directory with a real tokenizer (tokenizer.json and tokenizer_config.json, e.g. a model's) to copy instead of training one.", valueName: "dir"))
    var tokenizer: String?
    @Option(help: "BPE merges to learn (fewer if the text has no more pairs that occur twice).")
    var merges = 200
    @Flag(help: "Replace a model already in --output.")
    var overwrite = false

    func run() throws {
        try runReportingErrors {
            var options = ModelInit.Options()
            options.hiddenSize = hiddenSize
            options.intermediateSize = intermediateSize
            options.numLayers = layers
            options.numHeads = heads
            options.numKVHeads = kvHeads
            options.maxPositionEmbeddings = maxPositionEmbeddings
            options.tieWordEmbeddings = tieWordEmbeddings
            options.seed = seed
            options.merges = merges
            // Sizes are checked before the corpus is read, so a typo fails at once.
            try ModelInit.validate(options)
            if tokenizer != nil && tokenizerFrom != nil {
                throw DPOError("--tokenizer copies a tokenizer and --tokenizer-from trains one: give one of them")
            }
            options.tokenizerDirectory = tokenizer
            if let tokenizerFrom {
                guard let data = FileManager.default.contents(atPath: tokenizerFrom) else {
                    throw DPOError.file(tokenizerFrom, "cannot read the tokenizer corpus")
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw DPOError.file(tokenizerFrom, "the tokenizer corpus is not UTF-8 text")
                }
                options.corpus = text
            }

            let started = Date()
            let s = try ModelInit.createModelDirectory(output, options: options, overwrite: overwrite)
            let c = s.config
            note("wrote \(output): LlamaForCausalLM, \(s.parameterCount) parameters "
                 + "(hidden \(c.hiddenSize), intermediate \(c.intermediateSize), \(c.numLayers) layers, "
                 + "\(c.numHeads) heads / \(c.numKVHeads) kv heads, \(c.tieWordEmbeddings ? "tied" : "untied"), seed \(seed))")
            let source = tokenizer.map { "copied from \($0)" }
                ?? "3 special + 256 bytes + \(s.tokenizerVocabSize - 259) merged; \(s.mergesLearned) merges learned from \(tokenizerFrom ?? "the built-in English text")"
            note("tokenizer: \(s.tokenizerVocabSize) tokens (\(source)), EOS \(s.eosToken), "
                 + "model vocab_size \(c.vocabSize); " + String(format: "%.2f s", Date().timeIntervalSince(started)))
        }
    }
}
