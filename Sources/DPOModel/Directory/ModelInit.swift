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
        /// A directory holding a real tokenizer (tokenizer.json, tokenizer_config.json, ...) to use
        /// instead of training one: its files are copied, vocab_size and the special token ids
        /// follow it.
        public var tokenizerDirectory: String?

        public init() {}
    }

    /// What was written, for the command to print.
    public struct Summary: Sendable {
        public let config: ModelConfig
        public let parameterCount: Int
        /// Tokens the tokenizer knows (specials + bytes + merged tokens, or the copied tokenizer's
        /// vocabulary and added tokens); the model's vocab_size is this rounded up to a multiple of 8.
        public let tokenizerVocabSize: Int
        /// 0 for a copied tokenizer.
        public let mergesLearned: Int
        public let eosToken: String
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
    /// tokenizer_config.json (or the files of `tokenizerDirectory`) into `directory`. A directory
    /// that already holds a model is refused unless `overwrite`: replacing someone's trained weights
    /// by noise should never be silent.
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

        // The tokenizer first: a real one is read (and refused) before any weights are made.
        let tokenizer: MadeTokenizer = try o.tokenizerDirectory.map { try copiedTokenizer($0, output: directory) }
            ?? trainedTokenizer(o)
        // Rows past the tokenizer's vocabulary are never used as inputs; transformers allows the
        // model's vocab_size to be larger, and a multiple of 8 keeps matrix rows aligned.
        let modelVocab = (tokenizer.vocabSize + 7) / 8 * 8

        var config = ModelConfig.llama(vocabSize: modelVocab, hiddenSize: o.hiddenSize,
                                       intermediateSize: o.intermediateSize, numLayers: o.numLayers,
                                       numHeads: o.numHeads, numKVHeads: o.numKVHeads,
                                       tied: o.tieWordEmbeddings, maxPositions: o.maxPositionEmbeddings)
        // No pad_token_id in config.json: transformers would then zero that embedding row and
        // freeze it on the input side, and pad may be EOS. TRL pads with the tokenizer's pad token
        // whatever the config says.
        config.padTokenID = nil
        let model = Transformer(config: config)
        model.initializeRandom(seed: o.seed, std: 0.02)

        var configJSON = config.json()
        configJSON["bos_token_id"] = tokenizer.bosID ?? NSNull()
        configJSON["eos_token_id"] = tokenizer.eosID
        // The Float eps widened to Double would print as 9.999999747378752e-06.
        configJSON["rms_norm_eps"] = 1e-5

        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        // A companion file left by an earlier model (a chat_template.jinja overrides the config's
        // template) must not survive beside files that do not expect it.
        if overwrite {
            for name in ModelDirectory.companionFiles where fm.fileExists(atPath: path(name)) {
                do { try fm.removeItem(atPath: path(name)) } catch {
                    throw DPOError.file(path(name), "cannot remove the earlier model's file: \(error.localizedDescription)")
                }
            }
        }
        try ModelDirectory.save(model, to: directory, configJSON: configJSON, companionsFrom: o.tokenizerDirectory, dtype: .f32)
        if let json = tokenizer.tokenizerJSON, let tokenizerConfig = tokenizer.tokenizerConfig {
            try ModelDirectory.writeJSON(json, to: path("tokenizer.json"))
            try ModelDirectory.writeJSON(tokenizerConfig, to: path("tokenizer_config.json"))
        }
        if !fm.fileExists(atPath: path("generation_config.json")) {
            let stops = tokenizer.generationStops
            var generation: [String: Any] = ["eos_token_id": stops.count == 1 ? stops[0] as Any : stops, "_from_model_config": true]
            if let bos = tokenizer.bosID { generation["bos_token_id"] = bos }
            if let pad = tokenizer.padID { generation["pad_token_id"] = pad }
            try ModelDirectory.writeJSON(generation, to: path("generation_config.json"))
        }

        return Summary(config: config, parameterCount: model.parameterCount,
                       tokenizerVocabSize: tokenizer.vocabSize, mergesLearned: tokenizer.mergesLearned, eosToken: tokenizer.eos)
    }

    /// The tokenizer of a new model: learned here (its two files still to write) or copied.
    private struct MadeTokenizer {
        var vocabSize: Int
        var mergesLearned: Int
        var eos: String
        var eosID: Int
        var bosID: Int?
        var padID: Int?
        /// generation_config.json's eos_token_id: EOS first.
        var generationStops: [Int]
        var tokenizerJSON: [String: Any]?
        var tokenizerConfig: [String: Any]?
    }

    private static func trainedTokenizer(_ o: Options) -> MadeTokenizer {
        let json = TokenizerFiles.makeTokenizerJSON(corpus: o.corpus ?? TokenizerFiles.defaultCorpus, merges: o.merges)
        let vocab = (json["model"] as! [String: Any])["vocab"] as! [String: Int]
        let learned = ((json["model"] as! [String: Any])["merges"] as! [[String]]).count
        return MadeTokenizer(vocabSize: vocab.count, mergesLearned: learned, eos: TokenizerFiles.endOfTurn,
                             eosID: vocab[TokenizerFiles.endOfTurn]!, bosID: vocab[TokenizerFiles.endOfText]!,
                             padID: vocab[TokenizerFiles.endOfText]!,
                             // As Qwen2.5-Instruct's: generation stops at the turn end (EOS) and at <|endoftext|>.
                             generationStops: [vocab[TokenizerFiles.endOfTurn]!, vocab[TokenizerFiles.endOfText]!], tokenizerJSON: json,
                             tokenizerConfig: TokenizerFiles.makeTokenizerConfig(maxLength: o.maxPositionEmbeddings))
    }

    /// A real tokenizer's directory, read as training will read it (unsupported ones are refused
    /// here, by name); its files are copied as they are by `ModelDirectory.save`.
    private static func copiedTokenizer(_ source: String, output: String) throws -> MadeTokenizer {
        if (source as NSString).standardizingPath == (output as NSString).standardizingPath {
            throw DPOError.file(source, "is the --output directory; give the tokenizer's own directory")
        }
        let tokenizer = try Tokenizer(directory: source)
        guard let eos = tokenizer.eosToken, let eosID = tokenizer.eosTokenID else {
            throw DPOError.file(source, "the tokenizer names no eos_token that it knows (tokenizer_config.json); "
                                + "DPO and SFT append it to completions and generation stops at it")
        }
        return MadeTokenizer(vocabSize: tokenizer.vocabSize, mergesLearned: 0, eos: eos, eosID: eosID, bosID: tokenizer.bosTokenID,
                             padID: tokenizer.padToken.flatMap(tokenizer.tokenID), generationStops: [eosID],
                             tokenizerJSON: nil, tokenizerConfig: nil)
    }

}
