import DPOSupport
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

    /// A step slower than the threshold says after each of its micro-batches but the last how many
    /// are done; a fast one says nothing.
    func testASlowStepSaysHowManyMicroBatchesAreDone() throws {
        var a = baseArguments("slow-step")
        a.maxSteps = 2
        a.perDeviceTrainBatchSize = 1
        a.gradientAccumulationSteps = 3
        for (threshold, expected) in [(0.0, ["step 1/2: micro-batch 1 of 3", "step 1/2: micro-batch 2 of 3",
                                             "step 2/2: micro-batch 1 of 3", "step 2/2: micro-batch 2 of 3"]),
                                      (3600.0, [])] {
            let trainer = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
            trainer.slowStepNoteSeconds = threshold
            var notes: [String] = []
            trainer.slowStepNote = { notes.append($0) }
            try trainer.run()
            XCTAssertEqual(notes.map { $0.split(separator: " ").prefix(6).joined(separator: " ") },
                           expected, "threshold \(threshold)")
            XCTAssertTrue(notes.allSatisfy { $0.contains(" on this rank done after ") && $0.hasSuffix("s\n") }, "\(notes)")
            a.outputDir = Fixtures.temporaryDirectory("slow-step")
        }
    }

    /// The activations are allocated once, for the largest micro-batch, before the first step: no
    /// step allocates them again, though later batches are larger than the first (policy and an
    /// in-memory reference alike), and the run's numbers are those of a run that grew them as it went.
    func testNoStepAllocatesActivations() throws {
        var a = baseArguments("reserve")
        a.perDeviceTrainBatchSize = 1
        a.maxSteps = 6
        let trainer = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        let objective = try XCTUnwrap(trainer.objective as? DPOObjective)
        let reference = try XCTUnwrap(objective.reference)
        // The premise: some later step's pair packs more tokens than the first's.
        let tokens = (0..<a.maxSteps).map { PairScorer.packedTokens(objective.train.pairs[$0], sharePrompt: a.sharePrompt) }
        XCTAssertGreaterThan(tokens.dropFirst().max()!, tokens[0], "\(tokens)")
        let reserved = try TrainingRuns.run(trainer)
        XCTAssertEqual(trainer.policy.activationAllocations, 1)
        XCTAssertEqual(reference.activationAllocations, 1)

        // The same steps on a model that allocates as batches grow: the same weights, bit for bit.
        a.outputDir = Fixtures.temporaryDirectory("reserve-grown")
        let grown = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        for _ in 0..<a.maxSteps { _ = try grown.step() }
        XCTAssertGreaterThan(grown.policy.activationAllocations, 1)
        XCTAssertEqual(reserved.count, a.maxSteps)
        var h1 = FNV1a(), h2 = FNV1a()
        trainer.policy.weightsFingerprint(into: &h1)
        grown.policy.weightsFingerprint(into: &h2)
        XCTAssertEqual(h1.value, h2.value)
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

    /// A tokenizer that gives an id past the model's vocabulary (an added token the model has no row
    /// for) stops DPO and SFT at the row that has it, before any step.
    func testTokenIDsOutsideTheVocabularyAreRefused() throws {
        let model = Fixtures.temporaryDirectory("extra-token") + "/model"
        try FileManager.default.copyItem(atPath: Fixtures.model("llama-tied") + "/model", toPath: model)
        let tokenizerPath = model + "/tokenizer.json"
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tokenizerPath))) as? [String: Any])
        var added = try XCTUnwrap(json["added_tokens"] as? [[String: Any]])
        added.append(["id": 320, "content": "<extra>", "single_word": false, "lstrip": false, "rstrip": false,
                      "normalized": false, "special": false])
        json["added_tokens"] = added
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: tokenizerPath))
        let data = Fixtures.temporaryDirectory("extra-token-data")
        try "{\"prompt\": \"a\", \"chosen\": \" b\", \"rejected\": \" c\"}\n{\"prompt\": \"a <extra>\", \"chosen\": \" b\", \"rejected\": \" c\"}\n"
            .write(toFile: data + "/pairs.jsonl", atomically: true, encoding: .utf8)
        try "{\"text\": \"a b\"}\n{\"text\": \"<extra> b\"}\n".write(toFile: data + "/sft.jsonl", atomically: true, encoding: .utf8)

        var a = baseArguments("extra-token-run")
        a.model = model
        a.trainFile = data + "/pairs.jsonl"
        a.skipInvalidRows = true  // a mismatched tokenizer is no invalid row to skip
        XCTAssertThrowsError(try Trainer.dpo(args: a, comm: SingleProcessCommunicator())) { error in
            XCTAssertEqual("\(error)", "\(data)/pairs.jsonl:2: token id 320 is outside the model's vocabulary (vocab_size 320); the tokenizer does not match the model")
        }
        a.trainFile = data + "/sft.jsonl"
        XCTAssertThrowsError(try Trainer.sft(args: a, comm: SingleProcessCommunicator())) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(data)/sft.jsonl:2: token id 320 is outside"), "\(error)")
        }
    }

    /// A copy of a fixture model, to damage.
    func modelCopy(_ tag: String) throws -> String {
        let dir = Fixtures.temporaryDirectory(tag) + "/model"
        try FileManager.default.copyItem(atPath: Fixtures.model("llama-tied") + "/model", toPath: dir)
        return dir
    }

    /// With precomputed reference log-probs the eval loads the reference again; one that cannot be
    /// loaded is an error naming it, not an eval against a reference of zeros.
    func testAnEvalWhoseReferenceCannotLoadIsAnError() throws {
        var a = baseArguments("ref-gone")
        a.refModel = try modelCopy("ref-gone-model")
        a.evalFile = Fixtures.model("llama-tied") + "/pairs.jsonl"
        a.precomputeRefLogProbs = true
        let t = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        try t.objective.prepare(outputDir: a.outputDir)
        try Data("not weights".utf8).write(to: URL(fileURLWithPath: a.refModel! + "/model.safetensors"))
        XCTAssertThrowsError(try t.objective.evaluate()) { error in
            XCTAssertTrue("\(error)".contains("model.safetensors"), "\(error)")
        }
    }

    /// The final model is written before the eval report: a report that cannot be written is an
    /// error, and the trained weights are there.
    func testAReportThatCannotBeWrittenKeepsTheFinalModel() throws {
        var a = baseArguments("report-fails")
        a.evalFile = Fixtures.model("llama-tied") + "/pairs.jsonl"
        a.maxNewTokens = 2
        try FileManager.default.createDirectory(atPath: a.outputDir + "/eval_report.md", withIntermediateDirectories: true)
        XCTAssertThrowsError(try TrainingRuns.dpo(a)) { error in
            XCTAssertTrue("\(error)".hasPrefix(a.outputDir + "/eval_report.md: is a directory"), "\(error)")
        }
        XCTAssertNoThrow(try ModelDirectory.load(a.outputDir), "the final model was not saved")
    }

    /// A metrics line that cannot be written (a full disk: here /dev/full) stops the run with the
    /// file and the reason named, instead of a crash or a log with lines missing.
    func testAMetricsLineThatCannotBeWrittenIsAnError() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { throw XCTSkip("no /dev/full on this system") }
        let a = baseArguments("disk-full")
        try FileManager.default.createSymbolicLink(atPath: a.outputDir + "/metrics.jsonl", withDestinationPath: "/dev/full")
        XCTAssertThrowsError(try TrainingRuns.dpo(a)) { error in
            XCTAssertEqual("\(error)", a.outputDir + "/metrics.jsonl: cannot write a metrics line (No space left on device)")
        }
    }

    /// The largest micro-batch must fit the rank's memory: checked before step 1, naming the longest
    /// row, rather than failing an allocation hours into the run.
    func testARowTooLongForTheMemoryIsRefusedAtStart() throws {
        var a = baseArguments("memory")
        a.maxLength = nil
        let t = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        t.memoryBudget = 1_000_000
        XCTAssertThrowsError(try TrainingRuns.run(t)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(a.trainFile + ":"), text)
            XCTAssertTrue(text.contains("set max_length"), text)
        }
        XCTAssertEqual(t.globalStep, 0, "no step ran")
        XCTAssertFalse(FileManager.default.fileExists(atPath: a.outputDir + "/metrics.jsonl"))
    }

    /// Before any weight is read, the plan's weights and trained state come from config.json and the
    /// safetensors headers: the same items the plan after loading has, for full training and LoRA, on
    /// fp32 and bf16 files, with a ref_model; a budget below them refuses the run there, naming each.
    func testTheStateIsPlannedAndCheckedBeforeLoading() throws {
        let bf16 = Fixtures.temporaryDirectory("plan-bf16") + "/model"
        let original = try ModelDirectory.load(Fixtures.model("qwen2-untied") + "/model")
        try ModelDirectory.save(original.model, to: bf16, configJSON: original.configJSON, companionsFrom: original.directory, dtype: .bf16)
        var runs: [TrainingArguments] = []
        for model in [Fixtures.model("qwen2-untied") + "/model", bf16] {
            for lora in [false, true] {
                var a = TrainingRuns.arguments("plan", steps: 1)
                a.model = model
                a.usePeft = lora
                a.loraTargetModules = ["all-linear"]
                runs.append(a)
            }
        }
        var withReference = runs[1]
        withReference.refModel = bf16
        runs.append(withReference)
        for a in runs {
            let what = "\(a.model == bf16 ? "bf16" : "fp32") file, use_peft \(a.usePeft), ref_model \(a.refModel ?? "none")"
            let before = try Trainer.statePlan(args: a, source: try Trainer.PolicySource(a), ranksOnHost: 1,
                                               fp64GradientSum: a.gradientAccumulationSteps > 1)
            let after = try Trainer.dpo(args: a, comm: SingleProcessCommunicator()).memoryPlan()
            XCTAssertEqual(before.items.map(\.0), Array(after.items.map(\.0).prefix(before.items.count)), what)
            XCTAssertEqual(before.items.map(\.1), Array(after.items.map(\.1).prefix(before.items.count)), what)
            XCTAssertEqual(after.items.count, before.items.count + 2, "\(what): activations and the reference's follow")
            XCTAssertEqual(before.items.contains { $0.0.hasPrefix("frozen bf16") }, a.model == bf16 && a.usePeft, what)

            Trainer.stateMemoryBudget = before.total - 1
            defer { Trainer.stateMemoryBudget = nil }
            XCTAssertThrowsError(try Trainer.dpo(args: a, comm: SingleProcessCommunicator())) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("alone need more memory than this rank has, before any activation"), text)
                for item in ["parameters ", "gradients ", "AdamW moments ", "reference ", "total "] {
                    XCTAssertTrue(text.contains(item), "\(item) in \(text)")
                }
                XCTAssertFalse(text.contains("activations"), text)
            }
            Trainer.stateMemoryBudget = before.total
            XCTAssertNoThrow(try Trainer.dpo(args: a, comm: SingleProcessCommunicator()), "\(what): a state that just fits loads")
        }
    }

    /// The memory plan train prints and the memory check uses: each item from the parameter count and
    /// the activation size, the total their sum, the refusal naming every item.
    func testTheMemoryPlanItemizesWhatARankHolds() throws {
        var a = baseArguments("memory-plan")
        a.gradientAccumulationSteps = 2  // so the rank keeps an fp64 sum of its micro-batches' gradients
        let t = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        let plan = t.memoryPlan()
        let n = t.policy.parameterCount  // every parameter trains: gradients and moments cover them all
        XCTAssertEqual(n, t.policy.layout.tensors.reduce(0) { $0 + $1.count })
        let expected = [4 * n, 4 * n, 8 * n, 8 * n, 4 * n]
        XCTAssertEqual(plan.items.prefix(5).map(\.1), expected)
        XCTAssertEqual(plan.items.map(\.0).prefix(5), ["parameters", "gradients", "gradient sum (fp64)", "AdamW moments", "reference"])
        let batch = t.objective.largestMicroBatch()
        XCTAssertEqual(plan.items[5].0, "activations (\(batch.tokens) tokens)")
        XCTAssertEqual(plan.items[5].1, t.policy.activationBytes(tokens: batch.tokens, longestSequence: batch.longestSequence,
                                                                 scoredRows: batch.tokens))
        // The reference model runs in the step too, keeping one layer's activations.
        let reference = try XCTUnwrap((t.objective as? DPOObjective)?.reference)
        XCTAssertEqual(plan.items[6].0, "reference activations")
        XCTAssertEqual(plan.items[6].1, reference.activationBytes(tokens: batch.tokens, longestSequence: batch.longestSequence,
                                                                  scoredRows: batch.tokens))
        XCTAssertLessThan(plan.items[6].1, plan.items[5].1)
        XCTAssertEqual(plan.items.count, 7)
        XCTAssertEqual(plan.total, expected.reduce(0, +) + plan.items[5].1 + plan.items[6].1)
        XCTAssertTrue(plan.fits)
        XCTAssertNoThrow(try t.checkMemory())
        t.memoryBudget = plan.total - 1
        XCTAssertFalse(t.memoryPlan().fits)
        XCTAssertThrowsError(try t.checkMemory()) { error in
            let text = "\(error)"
            for item in ["parameters ", "gradients ", "gradient sum (fp64) ", "AdamW moments ", "reference ", "activations (",
                         "reference activations ", "total "] {
                XCTAssertTrue(text.contains(item), "\(item) in \(text)")
            }
            XCTAssertFalse(text.contains("\n"), text)
        }
        t.memoryBudget = plan.total
        XCTAssertNoThrow(try t.checkMemory(), "a plan that just fits runs")

        // With one micro-batch per rank no fp64 sum is kept, nor counted: alone, on blocking buckets,
        // under ZeRO-1 or with float32 sums; non-blocking fp64 buckets keep one.
        a.gradientAccumulationSteps = 1
        let one = try Trainer.dpo(args: a, comm: SingleProcessCommunicator()).memoryPlan()
        XCTAssertEqual(one.items.map(\.0).prefix(4), ["parameters", "gradients", "AdamW moments", "reference"])
        XCTAssertEqual(one.total, plan.total - 8 * n - plan.items[5].1 + one.items[4].1 - plan.items[6].1 + one.items[5].1)
        for (options, keeps) in [(ParallelOptions(), false), (ParallelOptions(zeroStage: 1), false),
                                 (ParallelOptions(reduceDtype: .float32), false), (ParallelOptions(blockingBuckets: false), true)] {
            XCTAssertEqual(options.keepsFP64GradientSum(ranks: 2, microBatchesPerRank: 1, allRanksOnOneHost: true), keeps, "\(options)")
            XCTAssertTrue(options.keepsFP64GradientSum(ranks: 2, microBatchesPerRank: 2, allRanksOnOneHost: true), "\(options)")
        }
    }

    func testSFTLearnsItsData() throws {
        var a = TrainingRuns.arguments("sft", model: "llama-tied", steps: 30, learningRate: 3e-3)
        a.trainFile = Fixtures.root + "/conversational/sft.jsonl"
        a.evalFile = a.trainFile
        a.loggingSteps = 10
        let t = try Trainer.sft(args: a, comm: SingleProcessCommunicator())
        let before = try XCTUnwrap(t.objective.evaluate())[.loss]
        let evalLoss = try TrainingRuns.run(t).flatMap { line in line.fields.filter { $0.0 == "eval_loss" }.map { $0.1 as! Double } }
        XCTAssertEqual(evalLoss.count, 1)
        XCTAssertLessThan(evalLoss[0], before / 3, "eval loss \(before) → \(evalLoss[0])")
        _ = try ModelDirectory.load(a.outputDir)
    }
}
