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
        XCTAssertEqual(loaded.configJSON["eos_token_id"] as? Int, 0)
        XCTAssertEqual(loaded.configJSON["rms_norm_eps"] as? Double, 1e-5)

        let tokenizer = try Tokenizer(directory: dir)
        XCTAssertEqual(summary.tokenizerVocabSize, 3 + 256 + 200, "the built-in corpus has enough pairs for 200 merges")
        XCTAssertEqual(tokenizer.vocabSize, summary.tokenizerVocabSize)
        XCTAssertEqual(c.vocabSize % 8, 0)
        XCTAssertTrue(c.vocabSize >= tokenizer.vocabSize && c.vocabSize < tokenizer.vocabSize + 8)
        XCTAssertEqual(tokenizer.eosToken, "<|endoftext|>")
        XCTAssertEqual(tokenizer.bosToken, "<|endoftext|>")
        XCTAssertEqual(tokenizer.padToken, "<|endoftext|>")
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
