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

    /// A fixture model's pairs as TRL tokenized them, scored two per batch (so batches are packed and
    /// the last one is ragged), beside transformers' float64 scores; and the worst relative difference.
    func scoresAgainstTransformers(_ name: String, matmul: any MatmulBackend = OpenBLASFP32()) throws
        -> (scores: [PairScore], expected: [Expected], worst: Double) {
        let dir = Fixtures.model(name)
        let model = try ModelDirectory.load(dir + "/model", matmul: matmul).model
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
        return (scores, expected, worst)
    }

    func testScoresEqualTransformers() throws {
        for name in Fixtures.modelNames {
            let (scores, expected, worst) = try scoresAgainstTransformers(name)
            for (s, e) in zip(scores, expected) {
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
            let worst = try scoresAgainstTransformers(name, matmul: try OneDNNBF16()).worst
            print("\(name) bf16: summed log-probs max relative diff \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-2, name)
        }
    }

    /// Prompts computed once give the per-token log-probs and every parameter's gradient of prompts
    /// computed twice, on every fixture model (policy with gradients, and a frozen copy), and save
    /// the prompt's tokens. Among the pairs: one whose sequences differ inside the prompt (packed
    /// apart), one with no prompt, one whose chosen is the prompt alone, one whose rejected is.
    func testSharedPromptsGiveTheNumbersOfSeparateSequences() throws {
        for name in Fixtures.modelNames {
            let dir = Fixtures.model(name)
            let trl = try JSONDecoder().decode([TRLTokens].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/pairs.tokens.json")))
            var pairs = trl.map { TokenizedPair(chosen: $0.prompt_ids + $0.chosen_ids, rejected: $0.prompt_ids + $0.rejected_ids, promptLength: $0.prompt_ids.count) }
            let p0 = trl[0].prompt_ids, p1 = trl[1].prompt_ids
            var differing = pairs[2]
            differing.rejected[1] = differing.rejected[1] == 5 ? 6 : 5
            pairs += [
                differing,
                TokenizedPair(chosen: trl[3].chosen_ids, rejected: trl[3].rejected_ids, promptLength: 0),
                TokenizedPair(chosen: p0, rejected: p0 + trl[0].rejected_ids, promptLength: p0.count),
                TokenizedPair(chosen: p1 + trl[1].chosen_ids, rejected: p1, promptLength: p1.count),
            ]
            XCTAssertEqual(pairs.map { PairScorer.sharedLength($0) },
                           trl.map(\.prompt_ids.count) + [0, 0, p0.count, p1.count], name)

            var shared = TokenBatch(), separate = TokenBatch()
            for p in pairs {
                PairScorer.append(p, to: &shared)
                PairScorer.append(p, to: &separate, sharePrompt: false)
            }
            XCTAssertEqual(shared.tokenCount, separate.tokenCount - pairs.reduce(0) { $0 + PairScorer.sharedLength($1) }, name)
            XCTAssertEqual(shared.tokenCount, pairs.reduce(0) { $0 + PairScorer.packedTokens($1) }, name)
            XCTAssertEqual(shared.scoredTargets, separate.scoredTargets, name)
            XCTAssertEqual(shared.scoredSequence, separate.scoredSequence, name)
            XCTAssertEqual(shared.longestSequence, separate.longestSequence, name)

            let policy = try ModelDirectory.load(dir + "/model").model
            policy.enableGradients()
            let frozen = try ModelDirectory.load(dir + "/model").model
            let weights = (0..<shared.scoredCount).map { Float(($0 * 7) % 5) - 2.5 }
            func run(_ batch: TokenBatch) -> (logp: [Float], frozenLogp: [Float], gradients: [Float]) {
                policy.parameters.gradients!.pointer.update(repeating: 0, count: policy.parameterCount)
                policy.forward(batch)
                let logp = Array(policy.scoredLogProbs)
                weights.withUnsafeBufferPointer { policy.backward(batch, dlogp: $0.baseAddress!) }
                frozen.forward(batch)
                return (logp, Array(frozen.scoredLogProbs),
                        Array(UnsafeBufferPointer(start: policy.parameters.gradients!.pointer, count: policy.parameterCount)))
            }
            let a = run(shared), b = run(separate)
            // logp = logit − log-sum-exp carries the rounding of a log-sum-exp near log(vocab), a few
            // 1e-7 however small logp is: relative to |logp|, and to 1 below 1.
            func worstRelative(_ x: [Float], _ y: [Float]) -> Float { zip(x, y).map { abs($0 - $1) / max(abs($1), 1) }.max() ?? 0 }
            let logpDiff = max(worstRelative(a.logp, b.logp), worstRelative(a.frozenLogp, b.frozenLogp))
            XCTAssertLessThanOrEqual(logpDiff, 1e-5, "\(name): per-token log-probs")
            var worstTensor = ("", Float(0))
            for t in policy.layout.tensors {
                let x = a.gradients[t.offset..<(t.offset + t.count)], y = b.gradients[t.offset..<(t.offset + t.count)]
                let relative = norm(zip(x, y).map { $0 - $1 }) / max(norm(y), 1e-12)
                if relative > worstTensor.1 { worstTensor = (t.name, relative) }
                XCTAssertLessThanOrEqual(relative, 1e-5, "\(name): gradient of \(t.name)")
            }
            print("\(name): shared vs separate prompts: \(shared.tokenCount) vs \(separate.tokenCount) tokens, log-probs max relative diff \(logpDiff), worst gradient ‖diff‖/‖ref‖ \(worstTensor.1) (\(worstTensor.0))")
        }
    }
}
