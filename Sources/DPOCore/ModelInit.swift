import Foundation

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

    /// `<|endoftext|>` is BOS, EOS and pad at once (as in SmolLM2 and GPT-2); the other two frame
    /// ChatML turns. They take ids 0, 1, 2, before the byte tokens, as SmolLM2's do.
    public static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    public static let endOfText = specialTokens[0]

    /// ChatML, the same template as SmolLM2-Instruct's and TRL's `clone_chat_template` default.
    public static let chatTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

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

        let tokenizerJSON = makeTokenizerJSON(corpus: o.corpus ?? defaultCorpus, merges: o.merges)
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

        let eos = vocab[endOfText]!
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
        try ModelDirectory.writeJSON(makeTokenizerConfig(maxLength: o.maxPositionEmbeddings),
                                     to: path("tokenizer_config.json"))
        // A chat_template.jinja left by an earlier model would override the config's template.
        if overwrite { try? fm.removeItem(atPath: path("chat_template.jinja")) }

        return Summary(config: config, parameterCount: model.parameterCount,
                       tokenizerVocabSize: vocab.count, mergesLearned: learned)
    }

    // MARK: - Tokenizer files

    /// A complete byte-level BPE `tokenizer.json`: specials at ids 0-2, the 256 bytes (GPT-2's
    /// byte-to-character map) at 3-258 in byte order, then the merged tokens in merge order. The
    /// pre-tokenizer is GPT-2's ByteLevel (its regex, no prefix space), the decoder ByteLevel, and
    /// there is no normalizer and no post-processor, so no BOS is added (as SmolLM2).
    public static func makeTokenizerJSON(corpus: String, merges: Int) -> [String: Any] {
        var trainer = BPETrainer(corpus: corpus)
        let trained = trainer.train(merges: merges)
        let addedTokens: [[String: Any]] = specialTokens.enumerated().map { id, content in
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false,
                                        "trim_offsets": true, "use_regex": true]
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(),
            "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(),
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": trained.vocab,
            "merges": trained.merges.map { [$0.0, $0.1] },
        ]
        return ["version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": addedTokens,
                "normalizer": NSNull(), "pre_tokenizer": byteLevel, "post_processor": NSNull(),
                "decoder": byteLevel, "model": model]
    }

    /// `tokenizer_config.json`. `PreTrainedTokenizerFast` is the class name transformers 4 and 5
    /// both resolve (5 maps it to its `TokenizersBackend`).
    public static func makeTokenizerConfig(maxLength: Int) -> [String: Any] {
        ["tokenizer_class": "PreTrainedTokenizerFast",
         "bos_token": endOfText, "eos_token": endOfText, "pad_token": endOfText,
         "additional_special_tokens": Array(specialTokens.dropFirst()),
         "model_max_length": maxLength,
         "clean_up_tokenization_spaces": false,
         "chat_template": chatTemplate]
    }

    // MARK: - BPE training

    /// A byte-level BPE trainer: split the corpus into words as the tokenizer's pre-tokenizer
    /// will, then repeatedly merge the most frequent adjacent pair of symbols. Ties go to the pair
    /// with the smaller ids (left, then right), the rule of `tokenizers`' BpeTrainer, which makes
    /// the result a function of the corpus alone. Pairs seen only once are not merged: with a
    /// small corpus they would be noise.
    struct BPETrainer {
        /// Byte b is token id `byteIDOffset + b`, after the special tokens.
        static let byteIDOffset = ModelInit.specialTokens.count

        /// Distinct words (byte-level strings) as symbol ids, and how often each occurs.
        private var words: [[Int]]
        private var counts: [Int]

        init(corpus: String) {
            // Special-token strings in the corpus are cut out first, as the tokenizer does when it
            // encodes: merges must never reach into them.
            var pieces = [corpus]
            for special in ModelInit.specialTokens {
                pieces = pieces.flatMap { $0.components(separatedBy: special) }
            }
            let preTokenizer = Tokenizer.PreTokenizer.byteLevel(
                addPrefixSpace: false, regex: try! Tokenizer.SplitPattern.compile(Tokenizer.ByteLevel.gpt2Pattern, section: "init"))
            var frequency: [String: Int] = [:]
            for word in preTokenizer.apply(pieces.filter { !$0.isEmpty }) { frequency[word, default: 0] += 1 }
            // Sorted so that every run visits words in the same order (Dictionary order is seeded per process).
            let sorted = frequency.keys.sorted { Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
            words = sorted.map { word in
                word.unicodeScalars.map { Self.byteIDOffset + Int(Tokenizer.ByteLevel.byteForScalar[$0]!) }
            }
            counts = sorted.map { frequency[$0]! }
        }

        struct Result {
            var vocab: [String: Int]
            var merges: [(String, String)]
        }

        struct Pair: Hashable, Comparable {
            let left: Int, right: Int
            static func < (a: Pair, b: Pair) -> Bool { (a.left, a.right) < (b.left, b.right) }
        }

        mutating func train(merges maxMerges: Int) -> Result {
            var tokens = ModelInit.specialTokens
            tokens += (0 ... 255).map { String(Character(Tokenizer.ByteLevel.scalarForByte[$0])) }
            var vocab = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
            var merges: [(String, String)] = []

            // Pair counts over the whole corpus, and for each pair the words that (may) hold it.
            // A merge only touches the words that hold its pair, so training costs about the size
            // of the corpus plus the work of the merges, not merges x corpus.
            var pairCounts: [Pair: Int] = [:]
            var wordsWithPair: [Pair: Set<Int>] = [:]
            func count(_ w: Int, _ sign: Int) {
                let symbols = words[w]
                for i in 0 ..< max(0, symbols.count - 1) {
                    let pair = Pair(left: symbols[i], right: symbols[i + 1])
                    pairCounts[pair, default: 0] += sign * counts[w]
                    if sign > 0 { wordsWithPair[pair, default: []].insert(w) }
                }
            }
            for w in words.indices { count(w, +1) }

            while merges.count < maxMerges {
                var best: (pair: Pair, count: Int)?
                for (pair, n) in pairCounts where n > 0 {
                    if let b = best, n < b.count || (n == b.count && b.pair < pair) { continue }
                    best = (pair, n)
                }
                guard let (pair, n) = best, n >= 2 else { break }

                // Two different pairs can spell the same string ("a"+"bc", "ab"+"c"); the second
                // merge then reuses the first one's token, as `tokenizers` does.
                let merged = tokens[pair.left] + tokens[pair.right]
                let newID: Int
                if let existing = vocab[merged] {
                    newID = existing
                } else {
                    newID = tokens.count
                    tokens.append(merged)
                    vocab[merged] = newID
                }
                merges.append((tokens[pair.left], tokens[pair.right]))

                // Left to right without overlap, as `tokenizers` merges a word ("aaa" + (a,a) -> "aa a").
                for w in wordsWithPair[pair] ?? [] {
                    count(w, -1)
                    var out: [Int] = []
                    out.reserveCapacity(words[w].count)
                    var i = 0
                    let symbols = words[w]
                    while i < symbols.count {
                        if i + 1 < symbols.count, symbols[i] == pair.left, symbols[i + 1] == pair.right {
                            out.append(newID)
                            i += 2
                        } else {
                            out.append(symbols[i])
                            i += 1
                        }
                    }
                    words[w] = out
                    count(w, +1)
                }
                wordsWithPair[pair] = nil
                pairCounts = pairCounts.filter { $0.value > 0 }
            }
            return Result(vocab: vocab, merges: merges)
        }
    }

    // MARK: - Default corpus

    /// A short English text for `dpo-dist init` without `--tokenizer-from`: enough to learn a few
    /// hundred common English merges. A task-specific corpus (the demo has data/demo/corpus.txt)
    /// gives merges that fit the data better.
    public static let defaultCorpus = """
    Direct preference optimization trains a language model on pairs of answers to the same prompt: \
    one answer that people preferred, and one that they rejected. There is no separate reward model. \
    The policy starts as a copy of the reference model, which was first trained on good examples \
    with supervised fine-tuning. During training, the loss pushes the policy to give the chosen \
    answer a higher probability than the reference gives it, and the rejected answer a lower one.

    The strength of that push is set by beta. With a small beta the policy may move far from the \
    reference; with a large beta it stays close. If the model starts to repeat itself or to forget \
    what it knew, lower the learning rate or raise beta. If the preferences do not show in its \
    answers, train for longer, or lower beta. Keep an eye on the rewards and the accuracies: the \
    share of pairs where the chosen answer gets the higher reward should rise above one half.

    A good data set has thousands of pairs, written for the task the model should learn. The \
    prompts should be varied, and the chosen and rejected answers should differ in the way that \
    matters, not in length or in style. Short answers are fine. Check a few hundred pairs by hand \
    before training: a wrong label teaches the model the wrong thing, and it does so with the \
    same confidence as a right one.

    The model reads text as tokens. This tokenizer starts from the 256 bytes, so it can read any \
    text in any language, and then learns which pairs of tokens are common enough to become new \
    tokens of their own. The words that appear most often, such as the, and, of, to, in, is, that, \
    for, with, on and as, are learned first. Numbers like 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100 \
    and 2024 and signs like +, -, =, ?, !, (, ), :, ; and . are kept as they are written.

    Training runs on every core of the machine, and across many machines at once with MPI: each \
    process takes its share of the pairs, computes the gradients of its share, and all processes \
    average their gradients before each step, so the result is the same as one large batch.
    """
}
