import DPOTestSupport
import Foundation
import XCTest
@testable import DPOComm
@testable import DPOModel
@testable import DPOTraining

/// A run owns the checkpoints it writes in output_dir and nothing else: it does not start among
/// another run's checkpoints, resumes only its own, and never overwrites or deletes its inputs.
final class OutputDirectoryTests: XCTestCase {
    /// Six steps with a checkpoint every three.
    func arguments(_ tag: String) -> TrainingArguments {
        var a = TrainingRuns.arguments(tag, model: "llama-tied", steps: 6)
        a.saveSteps = 3
        return a
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testAFreshRunDoesNotStartAmongAnotherRunsCheckpoints() throws {
        let a = arguments("reused")
        try TrainingRuns.dpo(a)
        var b = a
        b.learningRate = 2e-3
        let refused = message { try TrainingRuns.dpo(b) }
        XCTAssertTrue(refused.hasPrefix("\(a.outputDir): holds the checkpoints of an earlier run (checkpoint-3)"), refused)
        XCTAssertTrue(refused.contains("--overwrite-output-dir"), refused)

        // Resuming that run with other settings is refused, naming what differs.
        b.resumeFromCheckpoint = "auto"
        let other = message { try TrainingRuns.dpo(b) }
        XCTAssertTrue(other.hasPrefix("\(a.outputDir)/checkpoint-3: is not a checkpoint of this run: learning_rate 0.001 there, 0.002 now"), other)

        // Told to, it deletes them and starts afresh.
        b.resumeFromCheckpoint = nil
        b.overwriteOutputDir = true
        let (lines, _) = try TrainingRuns.dpo(b)
        XCTAssertEqual(lines.first?.fields.first { $0.0 == "step" }?.1 as? Int, 1)
    }

    func testResumeRefusesAnotherModelOrBatchAndADamagedState() throws {
        let a = arguments("resume-checks")
        try TrainingRuns.dpo(a, interruptAfter: 3)
        let checkpoint = a.outputDir + "/checkpoint-3"

        // Another model of the same shapes: the fixture's weights, slightly changed.
        let otherModel = Fixtures.temporaryDirectory("other-model") + "/model"
        let loaded = try ModelDirectory.load(a.model)
        loaded.model.parameters.values[0] += 1
        try ModelDirectory.save(loaded.model, to: otherModel, configJSON: loaded.configJSON, companionsFrom: a.model)
        var b = a
        b.model = otherModel
        b.resumeFromCheckpoint = checkpoint
        b.outputDir = Fixtures.temporaryDirectory("resume-other")
        let model = message { try TrainingRuns.dpo(b) }
        XCTAssertTrue(model.contains("trained from other starting weights than --model"), model)

        var c = a
        c.perDeviceTrainBatchSize = 4
        c.resumeFromCheckpoint = checkpoint
        c.outputDir = Fixtures.temporaryDirectory("resume-batch")
        let batch = message { try TrainingRuns.dpo(c) }
        XCTAssertTrue(batch.contains("global batch 2 there, 4 now"), batch)

        // Prompts packed apart round differently from shared ones: a setting that shapes the run.
        var e = a
        e.sharePrompt = false
        e.resumeFromCheckpoint = checkpoint
        e.outputDir = Fixtures.temporaryDirectory("resume-share")
        let sharing = message { try TrainingRuns.dpo(e) }
        XCTAssertTrue(sharing.contains("share_prompt true there, false now"), sharing)

        // A damaged trainer_state.json (a negative step) is refused, not followed.
        let statePath = checkpoint + "/trainer_state.json"
        let state = try String(contentsOfFile: statePath, encoding: .utf8)
        try state.replacingOccurrences(of: "\"global_step\" : 3", with: "\"global_step\" : -3")
            .write(toFile: statePath, atomically: true, encoding: .utf8)
        var d = a
        d.resumeFromCheckpoint = "auto"
        let damaged = message { try TrainingRuns.dpo(d) }
        XCTAssertTrue(damaged.hasPrefix(statePath + ": global_step, adam_step or max_steps is missing or impossible"), damaged)
    }

    func testInputsAreNeverOverwrittenOrRotatedAway() throws {
        let model = Fixtures.temporaryDirectory("input") + "/model"
        try FileManager.default.copyItem(atPath: Fixtures.model("llama-tied") + "/model", toPath: model)
        var a = arguments("inputs")
        a.model = model
        a.outputDir = model
        XCTAssertTrue(message { try TrainingRuns.dpo(a) }.hasPrefix("output_dir \(model) is the model directory"))
        a.outputDir = (model as NSString).deletingLastPathComponent
        XCTAssertTrue(message { try TrainingRuns.dpo(a) }.contains("lies inside output_dir"))
        XCTAssertNoThrow(try ModelDirectory.load(model), "the input model is intact")
    }

    /// A run killed while writing a checkpoint leaves `.tmp-checkpoint-*` (and `*.tmp-PID-*` files);
    /// the next run in that directory removes those whose writer is gone, and nothing else.
    func testTemporariesOfAKilledRunAreRemoved() throws {
        let a = arguments("temporaries")
        try FileManager.default.createDirectory(atPath: a.outputDir + "/.tmp-checkpoint-9-999999", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: a.outputDir + "/model.safetensors.tmp-999999-42"))
        try Data().write(to: URL(fileURLWithPath: a.outputDir + "/notes.txt"))
        try TrainingRuns.dpo(a)
        let names = try FileManager.default.contentsOfDirectory(atPath: a.outputDir)
        XCTAssertFalse(names.contains { $0.contains(".tmp") }, "\(names)")
        XCTAssertTrue(names.contains("notes.txt"))
    }
}
