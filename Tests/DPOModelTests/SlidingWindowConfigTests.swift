import DPOTestSupport
import Foundation
import XCTest
@testable import DPOModel
@testable import DPOKernels

/// Which layers slide, and through which window, read from config.json as transformers reads it
/// (tools/make_sliding_window_fixtures.py records transformers' answer for each config and checks
/// it against a hand-built mask), and the decoder passing each layer's window to attention.
final class SlidingWindowConfigTests: XCTestCase {
    func testLayerWindowsAreTransformers() throws {
        let path = Fixtures.root + "/models/sliding_windows.json"
        let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let cases = fixture["cases"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(cases.count, 9)
        for c in cases {
            let name = c["case"] as! String
            let config = try ModelConfig(json: c["config"] as! [String: Any], path: name)
            let expected = (c["layer_windows"] as! [Any]).map { ($0 as? NSNumber)?.intValue }
            XCTAssertEqual(config.spec.layerWindows, expected, name)
        }
    }

    func testASlidingLayerWithoutAWindowIsRefused() throws {
        var json: [String: Any] = [
            "architectures": ["Qwen2ForCausalLM"], "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "use_sliding_window": false, "sliding_window": 8,
            "layer_types": ["sliding_attention", "full_attention"],
        ]
        XCTAssertThrowsError(try ModelConfig(json: json, path: "config.json")) { error in
            XCTAssertTrue("\(error)".contains("config.json") && "\(error)".contains("sliding_window"), "\(error)")
        }
        json["use_sliding_window"] = true
        json["layer_types"] = ["sliding_attention"]
        XCTAssertThrowsError(try ModelConfig(json: json, path: "config.json")) { error in
            XCTAssertTrue("\(error)".contains("layer_types"), "\(error)")
        }
        json["layer_types"] = ["sliding_attention", "chunked_attention"]
        XCTAssertThrowsError(try ModelConfig(json: json, path: "config.json")) { error in
            XCTAssertTrue("\(error)".contains("chunked_attention"), "\(error)")
        }
        json["architectures"] = ["MistralForCausalLM"]
        json["sliding_window"] = 0
        XCTAssertThrowsError(try ModelConfig(json: json, path: "config.json")) { error in
            XCTAssertTrue("\(error)".contains("\"sliding_window\" must be at least 1"), "\(error)")
        }
    }

    /// The Mistral fixture's window (8) is shorter than its longer reference sequences, so the window
    /// changes its logits there: the reference test passing against transformers is a test of it.
    func testTheWindowChangesTheMistralFixture() throws {
        let loaded = try ModelDirectory.load(Fixtures.model("mistral-window") + "/model")
        XCTAssertEqual(loaded.model.config.spec.layerWindows, [8, 8])
        var batch = TokenBatch()
        let ids = (0..<30).map { 3 + ($0 * 7) % 50 }
        batch.append(ids, scoreFrom: 1)
        let windowed = loaded.model.logits(batch)
        var config = loaded.model.config
        config.spec.layerWindows = [nil, nil]
        let full = Transformer(config: config, values: loaded.model.parameters.values).logits(batch)
        let V = config.vocabSize
        // The first 8 positions see the same keys either way; later ones do not.
        XCTAssertEqual(Array(windowed[0..<(8 * V)]), Array(full[0..<(8 * V)]))
        XCTAssertGreaterThan(zip(windowed[(20 * V)...], full[(20 * V)...]).map { abs($0 - $1) }.max()!, 1e-2)
    }

    /// The Gemma 3 fixture's window (8, layers 0 and 2) and its sliding layers' own RoPE theta (1e4
    /// against the full layer's 1e6) each change its logits past the window, so the reference test
    /// against transformers tests both.
    func testTheWindowAndTheLocalThetaChangeTheGemma3Fixture() throws {
        let loaded = try ModelDirectory.load(Fixtures.model("gemma3") + "/model")
        var batch = TokenBatch()
        batch.append((0..<30).map { 3 + ($0 * 7) % 50 }, scoreFrom: 1)
        let ours = loaded.model.logits(batch)
        let V = loaded.model.config.vocabSize
        for change in ["no window", "one theta"] {
            var config = loaded.model.config
            if change == "no window" { config.spec.layerWindows = [nil, nil, nil] } else { config.spec.slidingRopeTheta = nil }
            let other = Transformer(config: config, values: loaded.model.parameters.values).logits(batch)
            XCTAssertGreaterThan(zip(ours[(20 * V)...], other[(20 * V)...]).map { abs($0 - $1) }.max()!, 1e-2, change)
        }
    }
}
