import DPOTestSupport
import XCTest
@testable import DPOData
@testable import DPOKernels
@testable import DPOModel
@testable import DPOTraining

/// `dpo-dist score`'s summed log-probs against transformers in float64 (tools/make_model_fixtures.py).
final class PairScorerTests: XCTestCase {
    struct Expected: Decodable {
        let chosen_logps: Double, rejected_logps: Double
        let chosen_tokens: Int, rejected_tokens: Int, prompt_tokens: Int
    }
    struct TRLTokens: Decodable { let prompt_ids: [Int], chosen_ids: [Int], rejected_ids: [Int] }

    func lines<T: Decodable>(_ path: String, as: T.Type) throws -> [T] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(T.self, from: Data($0.utf8)) }
    }

    func testScoresEqualTransformers() throws {
        for name in Fixtures.modelNames {
            let dir = Fixtures.model(name)
            let model = try ModelDirectory.load(dir + "/model").model
            let trl = try JSONDecoder().decode([TRLTokens].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/pairs.tokens.json")))
            let pairs = trl.map { TokenizedPair(chosen: $0.prompt_ids + $0.chosen_ids, rejected: $0.prompt_ids + $0.rejected_ids, promptLength: $0.prompt_ids.count) }
            let expected = try lines(dir + "/scores.jsonl", as: Expected.self)
            // Two pairs per batch, so batches are packed and the last one is ragged.
            let scores = PairScorer.score(model: model, pairs: pairs, pairsPerBatch: 2)
            var worst = 0.0
            for (s, e) in zip(scores, expected) {
                for (ours, ref) in [(s.chosenLogps, e.chosen_logps), (s.rejectedLogps, e.rejected_logps)] {
                    worst = max(worst, abs(ours - ref) / abs(ref))
                }
                XCTAssertEqual(s.chosenTokens, e.chosen_tokens, name)
                XCTAssertEqual(s.rejectedTokens, e.rejected_tokens, name)
                XCTAssertEqual(s.promptTokens, e.prompt_tokens, name)
            }
            print("\(name): summed log-probs max relative diff \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-4, name)
        }
    }

    /// The same pairs with bf16 products (oneDNN): per-pair summed log-probs within 1% of transformers'
    /// fp64 values. bf16 keeps 8 significant bits, so each product's operands are off by up to 2^-9
    /// relative; through 2–4 layers and the log-softmax that stays well under 1% here.
    func testBF16ScoresStayNearTransformers() throws {
        if let reason = OneDNNBF16.unavailableReason() { throw XCTSkip(reason) }
        for name in Fixtures.modelNames {
            let dir = Fixtures.model(name)
            let model = try ModelDirectory.load(dir + "/model", matmul: try OneDNNBF16()).model
            let trl = try JSONDecoder().decode([TRLTokens].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/pairs.tokens.json")))
            let pairs = trl.map { TokenizedPair(chosen: $0.prompt_ids + $0.chosen_ids, rejected: $0.prompt_ids + $0.rejected_ids, promptLength: $0.prompt_ids.count) }
            let expected = try lines(dir + "/scores.jsonl", as: Expected.self)
            let scores = PairScorer.score(model: model, pairs: pairs, pairsPerBatch: 2)
            var worst = 0.0
            for (s, e) in zip(scores, expected) {
                for (ours, ref) in [(s.chosenLogps, e.chosen_logps), (s.rejectedLogps, e.rejected_logps)] {
                    worst = max(worst, abs(ours - ref) / abs(ref))
                }
            }
            print("\(name) bf16: summed log-probs max relative diff \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-2, name)
        }
    }
}
