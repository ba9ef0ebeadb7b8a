import DPOTestSupport
import XCTest
@testable import DPOModel
@testable import DPOTraining

/// Stop at step k, resume, and the metrics of steps k+1..n equal those of an uninterrupted run bit
/// for bit (timing fields aside), as do the final parameters.
final class ResumeTests: XCTestCase {
    func arguments(output: String) -> TrainingArguments {
        var a = TrainingRuns.arguments("resume", steps: 7, perDevice: 3, accumulation: 2)
        a.outputDir = output
        a.lrSchedulerType = "cosine"
        a.warmupSteps = 2
        a.weightDecay = 0.05
        a.loggingSteps = 2      // the checkpoint at step 3 falls inside an open logging window
        a.saveSteps = 3
        a.saveTotalLimit = 1
        a.shuffle = true
        a.seed = 7
        return a
    }

    /// The run's metrics lines (exact values, timing aside) and its trainer.
    func run(_ a: TrainingArguments, interruptAfter: Int? = nil) throws -> ([[String: Double]], Trainer) {
        let (lines, trainer) = try TrainingRuns.dpo(a, interruptAfter: interruptAfter)
        return (Metrics.values(lines), trainer)
    }

    func testResumeIsBitIdentical() throws {
        let (full, uninterrupted) = try run(arguments(output: Fixtures.temporaryDirectory("resume-full")))
        let out = Fixtures.temporaryDirectory("resume-split")
        let (before, _) = try run(arguments(output: out), interruptAfter: 6)
        // save_total_limit 1 kept only the newest checkpoint.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("checkpoint-") }, ["checkpoint-6"])
        var resumed = arguments(output: out)
        resumed.resumeFromCheckpoint = "auto"
        let (after, continued) = try run(resumed)
        XCTAssertEqual(before + after, full)
        XCTAssertEqual(after.count, 1)  // step 7's line: only the steps after the checkpoint are logged again
        XCTAssertTrue(continued.policy.parameters.values.buffer.elementsEqual(uninterrupted.policy.parameters.values.buffer), "final parameters differ")

        // And from a checkpoint inside a logging window (step 3 of windows 1-2, 3-4).
        let out2 = Fixtures.temporaryDirectory("resume-window")
        var a2 = arguments(output: out2)
        a2.saveTotalLimit = nil
        let (first, _) = try run(a2, interruptAfter: 3)
        a2.resumeFromCheckpoint = out2 + "/checkpoint-3"
        let (rest, _) = try run(a2)
        XCTAssertEqual(first + rest, full)
        // metrics.jsonl reads as one run.
        let file = try String(contentsOfFile: out2 + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(file.count, full.count)
    }

    func testCheckpointIsAModelDirectoryAndTemporaryNamesVanish() throws {
        let out = Fixtures.temporaryDirectory("resume-files")
        var a = arguments(output: out)
        a.saveTotalLimit = nil
        _ = try run(a)
        let names = try FileManager.default.contentsOfDirectory(atPath: out)
        XCTAssertFalse(names.contains { $0.hasPrefix(".tmp") }, "\(names)")
        XCTAssertTrue(names.contains("checkpoint-3") && names.contains("checkpoint-6"))
        for file in ["config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "trainer_state.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/checkpoint-3/\(file)"), file)
        }
        _ = try ModelDirectory.load(out + "/checkpoint-3")
        _ = try ModelDirectory.load(out)  // the final model
    }
}
