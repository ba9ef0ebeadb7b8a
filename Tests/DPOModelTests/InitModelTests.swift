import ChatTemplates
import DPOTestSupport
import XCTest
@testable import DPOModel
@testable import DPOSupport
@testable import Tokenization

/// `dpo-dist init`: the directory it writes loads with our own loaders, is a function of the seed
/// and the corpus, and has a tokenizer whose ids the Python `tokenizers` library (and transformers,
/// see tools/check_init_model.py) agrees with.
final class InitModelTests: XCTestCase {
    func makeModel(_ configure: (inout ModelInit.Options) -> Void = { _ in }) throws -> (String, ModelInit.Summary) {
        var options = ModelInit.Options()
        configure(&options)
        let dir = Fixtures.temporaryDirectory("dpo-dist-init") + "/model"
        let summary = try ModelInit.createModelDirectory(dir, options: options)
        return (dir, summary)
    }

    func testDirectoryLoadsWithTheDefaults() throws {
        let (dir, summary) = try makeModel()
        let loaded = try ModelDirectory.load(dir)
        let c = loaded.model.config
        XCTAssertEqual(c.architecture, .llama)
        XCTAssertEqual([c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKVHeads, c.headDim,
                        c.maxPositionEmbeddings], [64, 192, 2, 4, 2, 16, 512])
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertNil(c.padTokenID, "pad_token_id would zero and freeze EOS's embedding row (pad = EOS)")
        XCTAssertEqual(loaded.configJSON["bos_token_id"] as? Int, 0)
        XCTAssertEqual(loaded.configJSON["eos_token_id"] as? Int, 2, "EOS is <|im_end|>, the end of a ChatML turn")
        let generation = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/generation_config.json"))) as! [String: Any]
        XCTAssertEqual(generation["eos_token_id"] as? [Int], [2, 0], "generation stops at the turn end, and at <|endoftext|>")
        XCTAssertEqual(loaded.configJSON["rms_norm_eps"] as? Double, 1e-5)

        let tokenizer = try Tokenizer(directory: dir)
        XCTAssertEqual(summary.tokenizerVocabSize, 3 + 256 + 200, "the built-in corpus has enough pairs for 200 merges")
        XCTAssertEqual(tokenizer.vocabSize, summary.tokenizerVocabSize)
        XCTAssertEqual(c.vocabSize % 8, 0)
        XCTAssertTrue(c.vocabSize >= tokenizer.vocabSize && c.vocabSize < tokenizer.vocabSize + 8)
        XCTAssertEqual(tokenizer.eosToken, "<|im_end|>")
        XCTAssertEqual(tokenizer.bosToken, "<|endoftext|>")
        XCTAssertEqual(tokenizer.padToken, "<|endoftext|>")
        // The assistant's turn ends with EOS, so chat generation stops there.
        let turn = try ChatRendering.render([ChatMessage(role: "user", content: "3+4="), ChatMessage(role: "assistant", content: "7")],
                                            tokenizer: tokenizer, addGenerationPrompt: false)
        XCTAssertEqual(tokenizer.encode(turn).suffix(2), [tokenizer.eosTokenID!, tokenizer.encode("\n")[0]])
        XCTAssertEqual(TokenizerFiles.specialTokens.map(tokenizer.tokenID), [0, 1, 2])
        XCTAssertEqual(tokenizer.chatTemplate, TokenizerFiles.chatTemplate)
        XCTAssertEqual(tokenizer.encode("<|im_start|>user\nhi<|im_end|>").first, 1)
        XCTAssertEqual(tokenizer.encode("hi"), tokenizer.encode("hi", addSpecialTokens: false), "no BOS is added")

        // transformers' initialisation: N(0, 0.02) matrices and embeddings, unit RMSNorm weights.
        let model = loaded.model
        for t in model.layout.tensors {
            let values = UnsafeBufferPointer(start: model.parameters.values.pointer + t.offset, count: t.count)
            if model.layout.isNormWeight(t) {
                XCTAssertTrue(values.allSatisfy { $0 == 1 }, t.name)
            } else {
                let mean = values.reduce(0, +) / Float(t.count)
                let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(t.count)).squareRoot()
                XCTAssertEqual(std, 0.02, accuracy: 0.003, t.name)
                XCTAssertEqual(mean, 0, accuracy: 0.002, t.name)
            }
        }
    }

    func testSameSeedSameFilesAndOtherSeedOtherWeights() throws {
        let (a, _) = try makeModel { $0.seed = 3 }
        let (b, _) = try makeModel { $0.seed = 3 }
        let (c, _) = try makeModel { $0.seed = 4 }
        func bytes(_ dir: String, _ name: String) throws -> Data {
            try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        for name in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            XCTAssertEqual(try bytes(a, name), try bytes(b, name), "\(name) differs between two runs with seed 3")
        }
        XCTAssertNotEqual(try bytes(a, "model.safetensors"), try bytes(c, "model.safetensors"))
        XCTAssertEqual(try bytes(a, "tokenizer.json"), try bytes(c, "tokenizer.json"), "the seed is for weights only")
    }

    func testSizesAndUntiedHeadReachTheConfig() throws {
        let (dir, summary) = try makeModel {
            $0.hiddenSize = 48; $0.intermediateSize = 96; $0.numLayers = 3; $0.numHeads = 6; $0.numKVHeads = 3
            $0.maxPositionEmbeddings = 128; $0.tieWordEmbeddings = false; $0.merges = 20
        }
        let c = try ModelDirectory.load(dir).model.config
        XCTAssertEqual([c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKVHeads, c.headDim,
                        c.maxPositionEmbeddings], [48, 96, 3, 6, 3, 8, 128])
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertEqual(summary.mergesLearned, 20)
        XCTAssertEqual(try Tokenizer(directory: dir).vocabSize, 3 + 256 + 20)
    }

    func testEncodeDecodeRoundTripOnUnicodeText() throws {
        let (dir, _) = try makeModel()
        let tokenizer = try Tokenizer(directory: dir)
        let texts = ["The model prefers the chosen answer.", "3+4=7 and 12-5=7", "  spaces\tand\nnew lines\n\n",
                     "모델은 선호하는 답을 배웁니다", "中文数据", "Ça marche très bien ✨🚀👍🏽", "e\u{301} combining",
                     "unseen: xylophone", "null\u{0} byte", "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>"]
        for text in texts {
            let ids = tokenizer.encode(text)
            XCTAssertEqual(tokenizer.decode(ids), text)
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabSize })
        }
        // Merges learned from English text make common words short.
        XCTAssertLessThan(tokenizer.encode(" the model").count, " the model".utf8.count / 2)
    }

    func testRefusesBadSizesWithOneLine() {
        func message(_ configure: (inout ModelInit.Options) -> Void) -> String? {
            var options = ModelInit.Options()
            configure(&options)
            let dir = Fixtures.temporaryDirectory("dpo-dist-init") + "/model"
            do {
                try ModelInit.createModelDirectory(dir, options: options)
                return nil
            } catch let error as DPOError {
                XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "nothing is written for bad sizes")
                return error.message
            } catch {
                return "not a DPOError: \(error)"
            }
        }
        let cases: [(String, (inout ModelInit.Options) -> Void)] = [
            ("num_attention_heads (--heads) 3 does not divide hidden_size (--hidden-size) 64", { $0.numHeads = 3 }),
            ("num_key_value_heads (--kv-heads) 3 does not divide num_attention_heads (--heads) 4", { $0.numKVHeads = 3 }),
            ("head_dim = hidden_size / num_attention_heads = 12 / 4 = 3 must be even for RoPE", { $0.hiddenSize = 12 }),
            ("num_hidden_layers (--layers) must be at least 1, got 0", { $0.numLayers = 0 }),
            ("hidden_size (--hidden-size) must be at least 1, got -8", { $0.hiddenSize = -8 }),
            ("--merges must be 0 or more, got -1", { $0.merges = -1 }),
        ]
        for (expected, configure) in cases {
            let got = message(configure)
            XCTAssertEqual(got, expected)
            XCTAssertFalse(got?.contains("\n") ?? true)
        }
    }

    /// Chat renderings and token ids that transformers' AutoTokenizer gives for directories init
    /// writes (tools/check_init_model.py --chat-fixture): init's own tokenizer and real ones copied
    /// with `tokenizerDirectory` (skipped where ../shared/tokenizers is absent).
    func testChatTextAndIdsEqualTransformersForOwnAndRealTokenizers() throws {
        let url = URL(fileURLWithPath: Fixtures.root + "/init/chat_ids.json")
        let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let models = fixture["models"] as! [String: [String: Any]]
        XCTAssertEqual(Set(models.keys), ["own", "smollm2-135m", "qwen3"])
        var checked = 0
        for (name, entry) in models.sorted(by: { $0.key < $1.key }) {
            var options = ModelInit.Options()
            if let source = entry["source"] as? String {
                let dir = Fixtures.sharedTokenizers + "/" + source
                guard FileManager.default.fileExists(atPath: dir + "/tokenizer.json") else { continue }
                options.tokenizerDirectory = dir
            }
            let dir = Fixtures.temporaryDirectory("dpo-dist-init-\(name)") + "/model"
            let summary = try ModelInit.createModelDirectory(dir, options: options)
            let tokenizer = try Tokenizer(directory: dir)
            XCTAssertEqual(tokenizer.vocabSize, entry["tokens"] as? Int, name)
            XCTAssertEqual(summary.tokenizerVocabSize, entry["tokens"] as? Int, name)
            XCTAssertEqual(tokenizer.eosToken, entry["eos_token"] as? String, name)
            XCTAssertEqual(tokenizer.eosTokenID, entry["eos_token_id"] as? Int, name)
            let loaded = try ModelDirectory.load(dir)
            XCTAssertEqual(loaded.configJSON["eos_token_id"] as? Int, entry["eos_token_id"] as? Int, name)
            XCTAssertGreaterThanOrEqual(loaded.model.config.vocabSize, tokenizer.vocabSize, name)
            XCTAssertLessThan(loaded.model.config.vocabSize, tokenizer.vocabSize + 8, name)
            for case let c as [String: Any] in entry["cases"] as! [Any] {
                let messages = (c["messages"] as! [[String: String]]).map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
                let text = try ChatRendering.render(messages, tokenizer: tokenizer, addGenerationPrompt: c["add_generation_prompt"] as! Bool)
                XCTAssertEqual(text, c["text"] as? String, name)
                XCTAssertEqual(tokenizer.encode(text, addSpecialTokens: false), c["ids"] as? [Int], "\(name): \(text)")
            }
            checked += 1
        }
        print("init over tokenizers: \(checked) of \(models.count) checked against AutoTokenizer")
        XCTAssertGreaterThanOrEqual(checked, 1)
    }

    /// A real tokenizer's files are copied as they are; one dpo-dist cannot use, or without an EOS,
    /// is refused before anything is written; an overwritten model keeps no file of the earlier one.
    func testRealTokenizerIsCopiedOrRefused() throws {
        let shared = Fixtures.sharedTokenizers
        guard FileManager.default.fileExists(atPath: shared + "/smollm3/tokenizer.json") else {
            throw XCTSkip("\(shared) is absent")
        }
        func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }
        var options = ModelInit.Options()
        options.tokenizerDirectory = shared + "/smollm3"
        let dir = Fixtures.temporaryDirectory("dpo-dist-init-real") + "/model"
        try ModelInit.createModelDirectory(dir, options: options)
        for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
            XCTAssertEqual(try bytes(dir + "/" + name), try bytes(shared + "/smollm3/" + name), name)
        }
        // init's own tokenizer over it: SmolLM3's chat_template.jinja would override the new ChatML template.
        try ModelInit.createModelDirectory(dir, options: ModelInit.Options(), overwrite: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/chat_template.jinja"))
        XCTAssertEqual(try Tokenizer(directory: dir).chatTemplate, TokenizerFiles.chatTemplate)

        func refusal(_ source: String, output: String? = nil) -> String? {
            var o = ModelInit.Options()
            o.tokenizerDirectory = source
            let out = output ?? Fixtures.temporaryDirectory("dpo-dist-init-refused") + "/model"
            do { try ModelInit.createModelDirectory(out, options: o) } catch let error as DPOError {
                XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"), "nothing is written for \(source)")
                return error.message
            } catch { return "not a DPOError: \(error)" }
            return nil
        }
        XCTAssertEqual(refusal(shared + "/gpt2"), "\(shared)/gpt2: the tokenizer names no eos_token that it knows (tokenizer_config.json); "
                       + "DPO and SFT append it to completions and generation stops at it")
        XCTAssertNil(refusal(shared + "/phi-3-mini"), "SentencePiece-style BPE (byte_fallback) is read")
        let here = Fixtures.temporaryDirectory("dpo-dist-init-same")
        XCTAssertEqual(refusal(here, output: here), "\(here): is the --output directory; give the tokenizer's own directory")
    }

    func testRefusesToOverwriteAModelUnlessAsked() throws {
        let (dir, _) = try makeModel { $0.seed = 1 }
        var options = ModelInit.Options()
        options.seed = 2
        XCTAssertThrowsError(try ModelInit.createModelDirectory(dir, options: options)) { error in
            XCTAssertEqual((error as? DPOError)?.message, "\(dir): already holds a model (config.json); pass --overwrite to replace it")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors"))
        try ModelInit.createModelDirectory(dir, options: options, overwrite: true)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors")), before)
    }

}
