import DPOTestSupport
import XCTest
@testable import DPOComm
@testable import DPOModel
@testable import DPOTraining

final class TrainerBehaviourTests: XCTestCase {
    func baseArguments(_ tag: String) -> TrainingArguments {
        var a = TrainingRuns.arguments(tag, model: "llama-tied", steps: 4, perDevice: 4)
        a.shuffle = false
        return a
    }

    /// The loss and margin of every logged step, as text.
    func run(_ a: TrainingArguments) throws -> [String] {
        try TrainingRuns.dpo(a).lines.flatMap { line in
            line.fields.filter { $0.0 == "loss" || $0.0 == "rewards/margins" }.map { "\($0.0)=\($0.1)" }
        }
    }

    /// A diverging run stops with the step named, and the checkpoint before it still loads.
    func testNonFiniteLossStopsWithTheStepNamed() throws {
        var a = baseArguments("nan")
        a.learningRate = 1e30
        a.maxGradNorm = 0
        a.saveSteps = 1
        a.maxSteps = 10
        XCTAssertThrowsError(try run(a)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("step "), message)
            XCTAssertTrue(message.contains("last checkpoint is intact"), message)
        }
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: a.outputDir).filter { $0.hasPrefix("checkpoint-") }
        XCTAssertFalse(checkpoints.isEmpty)
        for c in checkpoints { _ = try ModelDirectory.load(a.outputDir + "/" + c) }
    }

    /// precompute_ref_log_probs gives the numbers of an in-memory reference, and a second run reads
    /// the cache instead of computing it again.
    func testPrecomputedReferenceLogProbs() throws {
        let inMemory = try run(baseArguments("ref-live"))
        var a = baseArguments("ref-cache")
        a.precomputeRefLogProbs = true
        let first = try run(a)
        let cache = try FileManager.default.contentsOfDirectory(atPath: a.outputDir).filter { $0.hasPrefix("ref_logps-") }
        XCTAssertEqual(cache.count, 1)
        let second = try run(a)
        XCTAssertEqual(first, second)
        XCTAssertEqual(first.count, inMemory.count)
        for (x, y) in zip(first, inMemory) {
            let vx = Double(x.split(separator: "=")[1])!, vy = Double(y.split(separator: "=")[1])!
            // The cache was computed in other batches than the training micro-batches: fp32 sums of
            // ~100 log-probs then differ in the 7th digit, ~1e-7 absolute after β.
            XCTAssertEqual(vx, vy, accuracy: 1e-5 + 1e-5 * abs(vy), "\(x) vs \(y)")
        }
        // The cache is keyed by the data: other data, another file.
        var other = a
        other.maxLength = 40
        _ = try run(other)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: a.outputDir).filter { $0.hasPrefix("ref_logps-") }.count, 2)
    }

    /// Whether a run loads a reference is decided once, by the loss types: loss_type [simpo, sft]
    /// passes the config check as reference-free and then loads no frozen copy either.
    func testReferenceFreeLossesLoadNoReference() throws {
        var a = baseArguments("simpo-sft")
        a.lossType = ["simpo", "sft"]
        XCTAssertNoThrow(try a.validate(for: .dpo))
        XCTAssertFalse(a.usesReferenceModel)
        let t = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        let objective = try XCTUnwrap(t.objective as? DPOObjective)
        XCTAssertNil(objective.reference, "a reference-free loss loaded a reference model")
        try TrainingRuns.run(t)

        var b = baseArguments("sigmoid-sft")
        b.lossType = ["sigmoid", "sft"]
        XCTAssertTrue(b.usesReferenceModel)
        XCTAssertNotNil(try XCTUnwrap(Trainer.dpo(args: b, comm: SingleProcessCommunicator()).objective as? DPOObjective).reference)
    }

    func testSFTLearnsItsData() throws {
        var a = TrainingRuns.arguments("sft", model: "llama-tied", steps: 30, learningRate: 3e-3)
        a.trainFile = Fixtures.root + "/conversational/sft.jsonl"
        a.evalFile = a.trainFile
        a.loggingSteps = 10
        let t = try Trainer.sft(args: a, comm: SingleProcessCommunicator())
        let before = (t.objective.evaluate()!)[.loss]
        let evalLoss = try TrainingRuns.run(t).flatMap { line in line.fields.filter { $0.0 == "eval_loss" }.map { $0.1 as! Double } }
        XCTAssertEqual(evalLoss.count, 1)
        XCTAssertLessThan(evalLoss[0], before / 3, "eval loss \(before) → \(evalLoss[0])")
        _ = try ModelDirectory.load(a.outputDir)
    }
}
