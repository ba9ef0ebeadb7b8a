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
