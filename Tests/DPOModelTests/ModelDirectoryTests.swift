import DPOTestSupport
import XCTest
@testable import DPOModel
@testable import DPOSupport
@testable import Safetensors

final class ModelDirectoryTests: XCTestCase {
    func copyFixture(_ name: String) throws -> String {
        let dir = Fixtures.temporaryDirectory() + "/model"
        try FileManager.default.copyItem(atPath: Fixtures.model(name) + "/model", toPath: dir)
        return dir
    }

    func batch(_ name: String) throws -> TokenBatch {
        let file = try SafetensorsFile(path: Fixtures.model(name) + "/reference.safetensors")
        var b = TokenBatch()
        for i in 0..<3 { b.append(try file.int64s("ids.\(i)").map(Int.init), scoreFrom: 1) }
        return b
    }

    /// save → load gives the same logits: bit-identical in fp32; within bf16 rounding in bf16.
    func testSaveThenLoadGivesSameLogits() throws {
        for name in Fixtures.modelNames {
            let original = try ModelDirectory.load(Fixtures.model(name) + "/model")
            let out = Fixtures.temporaryDirectory() + "/saved"
            try ModelDirectory.save(original.model, to: out, configJSON: original.configJSON, companionsFrom: original.directory)
            let reloaded = try ModelDirectory.load(out)
            let b = try batch(name)
            XCTAssertEqual(original.model.logits(b), reloaded.model.logits(b), "\(name): fp32 round trip")
            XCTAssertEqual(reloaded.model.config.form, original.model.config.form, "\(name): config form kept")
            for file in ["tokenizer.json", "tokenizer_config.json"] {
                XCTAssertTrue(FileManager.default.contentsEqual(atPath: out + "/" + file, andPath: original.directory + "/" + file), file)
            }
        }
        // The bf16 fixture holds bf16-exact weights, so a bf16 save is lossless too.
        let bf16 = try ModelDirectory.load(Fixtures.model("llama3-bf16") + "/model")
        let out = Fixtures.temporaryDirectory() + "/saved-bf16"
        try ModelDirectory.save(bf16.model, to: out, configJSON: bf16.configJSON, companionsFrom: bf16.directory, dtype: .bf16)
        let reloaded = try ModelDirectory.load(out)
        XCTAssertEqual(reloaded.model.config.storedDType, "bfloat16")
        XCTAssertEqual(try SafetensorsFile(path: out + "/model.safetensors").tensors["lm_head.weight"]?.dtype, .bf16)
        let b = try batch("llama3-bf16")
        XCTAssertEqual(bf16.model.logits(b), reloaded.model.logits(b))
    }

    /// What dpo-dist saves is what transformers' save_pretrained wrote for the same model (the
    /// fixture's model.safetensors), saved in its dtype: the same tensor names, shapes and dtype, Phi-3's fused
    /// qkv_proj and gate_up_proj included, and the same values.
    func testSavedTensorsAreTransformersOwn() throws {
        for name in Fixtures.modelNames {
            let original = try ModelDirectory.load(Fixtures.model(name) + "/model")
            let out = Fixtures.temporaryDirectory() + "/saved"
            let dtype: SafetensorsDType = original.model.config.storedDType == "bfloat16" ? .bf16 : .f32
            try ModelDirectory.save(original.model, to: out, configJSON: original.configJSON, companionsFrom: original.directory,
                                    dtype: dtype)
            let theirs = try SafetensorsFile(path: Fixtures.model(name) + "/model/model.safetensors")
            let ours = try SafetensorsFile(path: out + "/model.safetensors")
            XCTAssertEqual(ours.tensorNames, theirs.tensorNames, name)
            for t in theirs.tensorNames {
                XCTAssertEqual(ours.tensors[t]?.shape, theirs.tensors[t]?.shape, "\(name): \(t)")
                XCTAssertEqual(ours.tensors[t]?.dtype, theirs.tensors[t]?.dtype, "\(name): \(t)")
                XCTAssertEqual(try ours.floats(t), try theirs.floats(t), "\(name): \(t)")
            }
        }
        let phi3 = try SafetensorsFile(path: Fixtures.model("phi3") + "/model/model.safetensors")
        XCTAssertEqual(phi3.tensors["model.layers.0.self_attn.qkv_proj.weight"]?.shape, [64, 32])  // 2·16 + 2·(1·16)
        XCTAssertEqual(phi3.tensors["model.layers.0.mlp.gate_up_proj.weight"]?.shape, [128, 32])
    }

    /// The keys that set each new architecture's decoder parts are read as transformers reads them.
    func testQwen3OLMo2AndPhi3Specs() throws {
        let (qwen3, _) = try ModelConfig.load(path: Fixtures.model("qwen3") + "/model/config.json")
        XCTAssertEqual(qwen3.spec.qkNorm, .perHead)
        XCTAssertEqual(qwen3.spec.normPlacement, .beforeSublayer)
        XCTAssertEqual(qwen3.headDim, 16)
        XCTAssertEqual(qwen3.qDim, 64)  // 4 heads of 16 over a hidden size of 32
        XCTAssertFalse(qwen3.spec.qkvBias)
        XCTAssertTrue(qwen3.tieWordEmbeddings)
        let (olmo2, _) = try ModelConfig.load(path: Fixtures.model("olmo2") + "/model/config.json")
        XCTAssertEqual(olmo2.spec.qkNorm, .wholeProjection)
        XCTAssertEqual(olmo2.spec.normPlacement, .afterSublayer)
        XCTAssertFalse(olmo2.tieWordEmbeddings)
        let (phi3, _) = try ModelConfig.load(path: Fixtures.model("phi3") + "/model/config.json")
        XCTAssertTrue(phi3.spec.fusedProjections)
        XCTAssertEqual(phi3.spec.partialRotaryFactor, 0.75)
        XCTAssertEqual(phi3.rotaryDim, 12)
        // transformers 4's form keeps the factor at the top level.
        let (phi3v4, _) = try ModelConfig.load(path: Fixtures.model("phi3") + "/config.v4.json")
        XCTAssertEqual(phi3v4.rotaryDim, 12)
    }

    /// Qwen3Config's defaults, not Llama's: head_dim 128 (not hidden / heads) and an untied head.
    func testQwen3DefaultsAreTransformers() throws {
        let path = Fixtures.model("qwen3") + "/model/config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        json.removeValue(forKey: "head_dim")
        json.removeValue(forKey: "tie_word_embeddings")
        let config = try ModelConfig(json: json, path: path)
        XCTAssertEqual(config.headDim, 128)
        XCTAssertFalse(config.tieWordEmbeddings)
    }

    /// Gemma 3's keys as Gemma3TextConfig reads them, in both config forms, and its defaults where
    /// config.json is silent.
    func testGemma3SpecAndDefaults() throws {
        for file in ["/model/config.json", "/config.v4.json"] {
            let (gemma, _) = try ModelConfig.load(path: Fixtures.model("gemma3") + file)
            XCTAssertEqual(gemma.spec.normPlacement, .aroundSublayer)
            XCTAssertEqual(gemma.spec.qkNorm, .perHead)
            XCTAssertEqual(gemma.spec.normWeightOffset, 1)
            XCTAssertEqual(gemma.spec.mlpActivation, .geluTanh)
            XCTAssertTrue(gemma.spec.scalesEmbedding)
            XCTAssertEqual(gemma.spec.attentionScalar, 24)
            XCTAssertEqual(gemma.spec.layerWindows, [8, nil, 8])
            XCTAssertEqual(gemma.ropeTheta, 1e6, file)
            XCTAssertEqual(gemma.spec.slidingRopeTheta, 1e4, file)
            XCTAssertTrue(gemma.tieWordEmbeddings)
        }
        let path = Fixtures.model("gemma3") + "/model/config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        for key in ["head_dim", "tie_word_embeddings", "pad_token_id", "rope_parameters", "query_pre_attn_scalar",
                    "layer_types", "sliding_window", "sliding_window_pattern", "_sliding_window_pattern", "hidden_activation"] {
            json.removeValue(forKey: key)
        }
        json["num_hidden_layers"] = 7
        let config = try ModelConfig(json: json, path: path)
        XCTAssertEqual(config.headDim, 256)
        XCTAssertTrue(config.tieWordEmbeddings)
        XCTAssertEqual(config.padTokenID, 0)
        XCTAssertEqual(config.ropeTheta, 1e6)
        XCTAssertEqual(config.spec.slidingRopeTheta, 1e4)
        XCTAssertEqual(config.spec.attentionScalar, 256)
        XCTAssertEqual(config.spec.layerWindows, [4096, 4096, 4096, 4096, 4096, nil, 4096])  // every 6th layer full
        XCTAssertEqual(config.spec.mlpActivation, .geluTanh)
    }

    /// The config.json dpo-dist writes for a Gemma 3 it has no original config of reads back as the same model.
    func testGemma3WrittenConfigReadsBack() throws {
        var (gemma, _) = try ModelConfig.load(path: Fixtures.model("gemma3") + "/model/config.json")
        let written = try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: gemma.json())) as! [String: Any]
        XCTAssertNil(written["hidden_act"])
        let back = try ModelConfig(json: written, path: "config.json")
        gemma.form = back.form
        XCTAssertEqual(back, gemma)
        XCTAssertEqual(back.spec.slidingRopeTheta, 1e4)
        XCTAssertEqual(back.spec.attentionScalar, 24)
    }

    func testGemma3SoftCappingAndTheMultimodalModelAreRefused() throws {
        for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
            let dir = try copyFixture("gemma3")
            try editConfig(dir) { $0[key] = 30.0 }
            assertLoadFails(dir, contains: ["config.json", key, "soft-capping"])
        }
        let act = try copyFixture("gemma3")
        try editConfig(act) { $0["hidden_activation"] = "gelu" }
        assertLoadFails(act, contains: ["config.json", "hidden_activation", "\"gelu\""])
        let bidirectional = try copyFixture("gemma3")
        try editConfig(bidirectional) { $0["use_bidirectional_attention"] = true }
        assertLoadFails(bidirectional, contains: ["config.json", "use_bidirectional_attention"])
        let multimodal = try copyFixture("gemma3")
        try editConfig(multimodal) {
            $0["architectures"] = ["Gemma3ForConditionalGeneration"]
            $0["model_type"] = "gemma3"
        }
        assertLoadFails(multimodal, contains: ["config.json", "Gemma3ForConditionalGeneration", "Gemma3ForCausalLM", "gemma3_text"])
    }

    func testPhi3LongRopeIsRefused() throws {
        for type in ["longrope", "su"] {
            let dir = try copyFixture("phi3")
            try editConfig(dir) {
                $0["rope_parameters"] = ["rope_type": type, "rope_theta": 10000.0, "partial_rotary_factor": 0.75,
                                         "short_factor": [1.0, 1.0], "long_factor": [2.0, 2.0]]
            }
            assertLoadFails(dir, contains: ["config.json", "\"\(type)\"", "Phi-3's long-context RoPE"])
        }
        let v4 = try copyFixture("phi3")
        try FileManager.default.removeItem(atPath: v4 + "/config.json")
        try FileManager.default.copyItem(atPath: Fixtures.model("phi3") + "/config.v4.json", toPath: v4 + "/config.json")
        try editConfig(v4) { $0["rope_scaling"] = ["type": "su", "short_factor": [1.0], "long_factor": [2.0]] }
        assertLoadFails(v4, contains: ["config.json", "\"su\"", "Phi-3's long-context RoPE"])
        let linear = try copyFixture("phi3")
        try editConfig(linear) { $0["rope_parameters"] = ["rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0] }
        assertLoadFails(linear, contains: ["config.json", "\"linear\"", "Phi3ForCausalLM"])
        let odd = try copyFixture("phi3")
        try editConfig(odd) { $0["rope_parameters"] = ["rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.7] }
        assertLoadFails(odd, contains: ["config.json", "partial_rotary_factor", "11"])  // int(16 × 0.7) = 11, odd
    }

    func assertLoadFails(_ dir: String, contains fragments: [String], line: UInt = #line) {
        XCTAssertThrowsError(try ModelDirectory.load(dir), line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(error is DPOError, "not a DPOError: \(message)", line: line)
            XCTAssertFalse(message.contains("\n"), "one line: \(message)", line: line)
            for f in fragments { XCTAssertTrue(message.contains(f), "\"\(message)\" should mention \"\(f)\"", line: line) }
        }
    }

    func editConfig(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let path = dir + "/config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    }

    func testHeadsThatDoNotDivideHiddenSizeAreRefused() throws {
        let dir = try copyFixture("llama-tied")
        // With an explicit head_dim transformers needs no divisibility, so the test removes it.
        try editConfig(dir) { $0["num_attention_heads"] = 6; $0.removeValue(forKey: "head_dim") }
        assertLoadFails(dir, contains: ["config.json", "num_attention_heads 6", "hidden_size 64"])
    }

    func testKVHeadsThatDoNotDivideHeadsAreRefused() throws {
        let dir = try copyFixture("llama-tied")
        try editConfig(dir) { $0["num_key_value_heads"] = 3 }
        assertLoadFails(dir, contains: ["config.json", "num_key_value_heads 3"])
    }

    func testUnsupportedArchitectureAndRopeAreRefused() throws {
        let dir = try copyFixture("llama-tied")
        try editConfig(dir) { $0["architectures"] = ["FalconForCausalLM"] }
        assertLoadFails(dir, contains: ["config.json", "FalconForCausalLM"])
        let dir2 = try copyFixture("llama-tied")
        try editConfig(dir2) { $0["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0] }
        assertLoadFails(dir2, contains: ["config.json", "yarn"])
    }

    func testTensorOfTheWrongShapeIsRefused() throws {
        let dir = try copyFixture("qwen2-untied")
        try editConfig(dir) { $0["intermediate_size"] = 96 }
        assertLoadFails(dir, contains: [dir, "mlp.gate_proj.weight", "[128, 64]", "[96, 64]"])
    }

    func testMissingAndExtraTensorsAreRefused() throws {
        let dir = try copyFixture("llama-tied")
        try editConfig(dir) { $0["num_hidden_layers"] = 3 }
        assertLoadFails(dir, contains: ["missing tensor", "model.layers.2."])
        let dir2 = try copyFixture("llama-tied")
        try editConfig(dir2) { $0["num_hidden_layers"] = 1 }
        assertLoadFails(dir2, contains: ["not used", "model.layers.1."])
    }

    func testTruncatedWeightsFileIsRefused() throws {
        let dir = try copyFixture("llama-tied")
        let path = dir + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        assertLoadFails(dir, contains: ["model.safetensors"])
    }

    func testMissingDirectoryAndMissingConfigAreRefused() throws {
        assertLoadFails("/nonexistent/model", contains: ["/nonexistent/model", "no such model directory"])
        XCTAssertThrowsError(try ModelDirectory.load("/nonexistent/model")) { XCTAssertFalse("\($0)".contains("hf download"), "\($0)") }
        assertLoadFails("Qwen/Qwen2.5-0.5B-Instruct", contains: ["no such model directory", "Hub id", "hf download Qwen/Qwen2.5-0.5B-Instruct --local-dir"])
        for notAnID in ["a/b/c", "./x", "owner/", "/abs", "owner/na me"] {
            XCTAssertNil(ModelDirectory.hubDownloadHint(notAnID), notAnID)
        }
        // Where a folder `owner` exists in the current directory, owner/name is a mistyped path, not an id.
        let folders = try FileManager.default.contentsOfDirectory(atPath: ".").filter { name in
            var isDir: ObjCBool = false
            return !name.hasPrefix(".") && name.allSatisfy { $0.isLetter || $0.isNumber || "-_".contains($0) }
                && FileManager.default.fileExists(atPath: name, isDirectory: &isDir) && isDir.boolValue
        }
        if let folder = folders.first {
            XCTAssertNil(ModelDirectory.hubDownloadHint(folder + "/missing-\(UUID().uuidString)"), folder)
        }
        XCTAssertNotNil(ModelDirectory.hubDownloadHint("owner-\(UUID().uuidString)/name"))
        let dir = try copyFixture("llama-tied")
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        assertLoadFails(dir, contains: ["config.json"])
    }
}
