import DPOSupport
import Foundation
import Tokenization

/// Makes a fresh model directory from nothing: a random Llama (initialised as transformers does)
/// and a byte-level BPE tokenizer trained here on a small text corpus. The directory is a plain
/// Hugging Face one, so `transformers` (`AutoModelForCausalLM`, `AutoTokenizer`) and TRL load it
/// as well as dpo-dist does. It is what `dpo-dist init` writes for the demo and for experiments
/// that need a model small enough to train in minutes on a laptop.
public enum ModelInit {
    /// The sizes and sources of a new model. Defaults: a 2-layer, 64-wide Llama (about 0.1 M
    /// parameters with the default tokenizer) that learns the bundled demo tasks in minutes.
    public struct Options: Sendable {
        public var hiddenSize = 64
        public var intermediateSize = 192
        public var numLayers = 2
        public var numHeads = 4
        public var numKVHeads = 2
        public var maxPositionEmbeddings = 512
        /// SmolLM2 and other small models share the embedding with the LM head; it halves the
        /// vocabulary's share of a tiny model.
        public var tieWordEmbeddings = true
        public var seed: UInt64 = 0
        /// How many BPE merges to learn on top of the 256 byte tokens.
        public var merges = 200
        /// The text the tokenizer is trained on; nil uses `defaultCorpus`.
        public var corpus: String?

        public init() {}
    }

    /// What was written, for the command to print.
    public struct Summary: Sendable {
        public let config: ModelConfig
        public let parameterCount: Int
        /// Tokens the tokenizer knows (specials + bytes + merged tokens); the model's vocab_size
        /// is this rounded up to a multiple of 8.
        public let tokenizerVocabSize: Int
        public let mergesLearned: Int
    }

    // MARK: - Directory

    /// Checks the sizes before any work, with the config.json key and the command-line flag named,
    /// because transformers would only fail later, at load time, with a shape error.
    public static func validate(_ o: Options) throws {
        for (key, flag, value) in [("hidden_size", "--hidden-size", o.hiddenSize),
                                   ("intermediate_size", "--intermediate-size", o.intermediateSize),
                                   ("num_hidden_layers", "--layers", o.numLayers),
                                   ("num_attention_heads", "--heads", o.numHeads),
                                   ("num_key_value_heads", "--kv-heads", o.numKVHeads),
                                   ("max_position_embeddings", "--max-position-embeddings", o.maxPositionEmbeddings)]
            where value < 1 {
            throw DPOError("\(key) (\(flag)) must be at least 1, got \(value)")
        }
        guard o.hiddenSize % o.numHeads == 0 else {
            throw DPOError("num_attention_heads (--heads) \(o.numHeads) does not divide hidden_size (--hidden-size) \(o.hiddenSize)")
        }
        let headDim = o.hiddenSize / o.numHeads
        guard headDim % 2 == 0 else {
            throw DPOError("head_dim = hidden_size / num_attention_heads = \(o.hiddenSize) / \(o.numHeads) = \(headDim) must be even for RoPE")
        }
        guard o.numHeads % o.numKVHeads == 0 else {
            throw DPOError("num_key_value_heads (--kv-heads) \(o.numKVHeads) does not divide num_attention_heads (--heads) \(o.numHeads)")
        }
        guard o.merges >= 0 else { throw DPOError("--merges must be 0 or more, got \(o.merges)") }
    }

    /// Writes config.json, generation_config.json, model.safetensors (fp32), tokenizer.json and
    /// tokenizer_config.json into `directory`. A directory that already holds a model is refused
    /// unless `overwrite`: replacing someone's trained weights by noise should never be silent.
    @discardableResult
    public static func createModelDirectory(_ directory: String, options o: Options = Options(),
                                            overwrite: Bool = false) throws -> Summary {
        try validate(o)
        let fm = FileManager.default
        if !overwrite {
            for name in ["config.json", "model.safetensors", "tokenizer.json"]
            where fm.fileExists(atPath: (directory as NSString).appendingPathComponent(name)) {
                throw DPOError.file(directory, "already holds a model (\(name)); pass --overwrite to replace it")
            }
        }

        let tokenizerJSON = TokenizerFiles.makeTokenizerJSON(corpus: o.corpus ?? TokenizerFiles.defaultCorpus, merges: o.merges)
        let vocab = (tokenizerJSON["model"] as! [String: Any])["vocab"] as! [String: Int]
        let learned = ((tokenizerJSON["model"] as! [String: Any])["merges"] as! [[String]]).count
        // Rows past the tokenizer's vocabulary are never used as inputs; transformers allows the
        // model's vocab_size to be larger, and a multiple of 8 keeps matrix rows aligned.
        let modelVocab = (vocab.count + 7) / 8 * 8

        var config = ModelConfig.llama(vocabSize: modelVocab, hiddenSize: o.hiddenSize,
                                       intermediateSize: o.intermediateSize, numLayers: o.numLayers,
                                       numHeads: o.numHeads, numKVHeads: o.numKVHeads,
                                       tied: o.tieWordEmbeddings, maxPositions: o.maxPositionEmbeddings)
        // No pad_token_id in config.json: transformers would then zero that embedding row and
        // freeze it on the input side, and with pad = EOS that would be EOS's row. TRL pads with
        // the tokenizer's pad token whatever the config says.
        config.padTokenID = nil
        let model = Transformer(config: config)
        model.initializeRandom(seed: o.seed, std: 0.02)

        let eos = vocab[TokenizerFiles.endOfText]!
        var configJSON = config.json()
        configJSON["bos_token_id"] = eos
        configJSON["eos_token_id"] = eos
        // The Float eps widened to Double would print as 9.999999747378752e-06.
        configJSON["rms_norm_eps"] = 1e-5
        try ModelDirectory.save(model, to: directory, configJSON: configJSON, companionsFrom: nil, dtype: .f32)

        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        try ModelDirectory.writeJSON(["bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos,
                                      "_from_model_config": true], to: path("generation_config.json"))
        try ModelDirectory.writeJSON(tokenizerJSON, to: path("tokenizer.json"))
        try ModelDirectory.writeJSON(TokenizerFiles.makeTokenizerConfig(maxLength: o.maxPositionEmbeddings),
                                     to: path("tokenizer_config.json"))
        // A chat_template.jinja left by an earlier model would override the config's template.
        if overwrite { try? fm.removeItem(atPath: path("chat_template.jinja")) }

        return Summary(config: config, parameterCount: model.parameterCount,
                       tokenizerVocabSize: vocab.count, mergesLearned: learned)
    }

}
