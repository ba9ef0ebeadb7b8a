import DPOComm
import DPOTestSupport
import XCTest
@testable import DPOData
import DPOSupport
@testable import DPOKernels
@testable import DPOModel
@testable import DPOTraining
@testable import Safetensors

/// LoRA against TRL 1.16 + PEFT 0.21 (tools/make_trl_lora_fixtures.py): 10 DPO steps from a saved
/// starting adapter whose B is not zero, TRL's reference being a frozen copy of that adapter.
extension TRLParityTests {
    static let lora = trl + "/lora"

    /// Our run of a LoRA case against TRL's logs, and the trained adapter against PEFT's.
    func runLoRACase(_ name: String) throws {
        let args = try arguments(case: name, in: Self.lora)
        XCTAssertTrue(AdapterDirectory.isAdapter(args.model))
        let (lines, trainer) = try TrainingRuns.dpo(args)
        assertMatches(lines, try expectedMetrics("lora/" + name), keys: Self.dpoKeys, "lora " + name)
        try assertFinalAdapter(name, trainer, start: args.model)
    }

    /// The trained adapter against PEFT's after TRL's run (`NAME.final.safetensors`), which must have
    /// moved it well beyond the difference.
    func assertFinalAdapter(_ name: String, _ trainer: Trainer, start startDirectory: String) throws {
        let adapters = try XCTUnwrap(trainer.policy.adapters)
        XCTAssertNil(trainer.policy.parameters.gradients, "the frozen base keeps no gradient")
        let final = try SafetensorsFile(path: "\(Self.lora)/\(name).final.safetensors")
        XCTAssertEqual(Set(final.tensorNames), Set(adapters.parameters.tensors.map(\.name)))
        var worst: Float = 0, moved: Float = 0
        let start = try AdapterDirectory.load(startDirectory).base.model.adapters!
        for t in adapters.parameters.tensors {
            let ref = try final.floats(t.name)
            let ours = UnsafeBufferPointer(start: adapters.parameters.values.pointer + t.offset, count: t.count)
            worst = max(worst, maxAbsDiff(ours, ref))
            moved = max(moved, maxAbsDiff(UnsafeBufferPointer(start: start.parameters.values.pointer + t.offset, count: t.count), ref))
        }
        print("lora \(name): final adapter max |diff| from PEFT's \(worst) (the adapter moved up to \(moved))")
        XCTAssertLessThanOrEqual(worst, 1e-4)
        XCTAssertGreaterThan(moved, 100 * worst, "the comparison says something only if training moved the adapter")
    }

    /// SFT on a LoRA adapter (all-linear, r 8) against TRL's SFTTrainer on the PeftModel: loss,
    /// grad_norm, entropy, mean_token_accuracy per step, and the trained adapter.
    func testLoRASFT() throws {
        var (a, config) = try sftArguments("trl-lora-sft", config: "\(Self.lora)/sft.config.json")
        a.model = "\(Self.lora)/\(config["starting_adapter"] as! String)"
        let t = try Trainer.sft(args: a, comm: SingleProcessCommunicator())
        XCTAssertNotNil(t.policy.adapters)
        let lines = try TrainingRuns.run(t)
        assertMatches(lines, try expectedMetrics("lora/sft"),
                      keys: ["loss", "grad_norm", "learning_rate", "num_tokens", "entropy", "mean_token_accuracy"], "lora sft")
        try assertFinalAdapter("sft", t, start: a.model)
    }

    /// LoRA with bf16 products against TRL's bf16-autocast LoRA run and its fp32 one (see
    /// `testBF16TracksTRLsBF16AndFP32Runs`).
    func testLoRABF16TracksTRLsBF16AndFP32Runs() throws {
        if let reason = OneDNNBF16.unavailableReason() { throw XCTSkip(reason) }
        let args = try arguments(case: "sigmoid_bf16", in: Self.lora)
        XCTAssertTrue(args.bf16)
        let (lines, trainer) = try TrainingRuns.dpo(args)
        XCTAssertNotNil(trainer.policy.adapters)
        XCTAssertTrue(trainer.policy.matmul.name.contains("oneDNN bf16"), trainer.policy.matmul.name)
        try assertBF16Tracks(lines, bf16: "lora/sigmoid_bf16", fp32: "lora/sigmoid")
    }

    /// r 8, alpha 16 on every decoder linear (all-linear), sigmoid loss.
    func testLoRASigmoidAllLinear() throws { try runLoRACase("sigmoid") }
    /// r 4, alpha 8, rsLoRA scaling on q_proj and v_proj, IPO loss.
    func testLoRAIPOWithRSLoRAOnQV() throws { try runLoRACase("ipo") }
    /// Phi-3's fused qkv_proj and gate_up_proj: one adapter each, its B's rows spanning the parts
    /// (r 4, alpha 8, all-linear), sigmoid loss.
    func testLoRAOnPhi3sFusedProjections() throws { try runLoRACase("phi3_sigmoid") }
}

final class LoRATests: XCTestCase {
    static let adapter = TRLParityTests.lora + "/initial-all-linear"

    struct PEFTLogps: Decodable {
        let prompt_ids: [Int], chosen_ids: [Int], rejected_ids: [Int]
        let chosen_logps: Double, rejected_logps: Double
    }

    func peftLogps(_ path: String) throws -> [PEFTLogps] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(PEFTLogps.self, from: Data($0.utf8))
        }
    }

    /// The worst relative difference of `model`'s summed log-probs from PEFT's, and from the base's.
    func scores(_ model: Transformer, against expected: [PEFTLogps]) -> [Double] {
        let pairs = expected.map { TokenizedPair(chosen: $0.prompt_ids + $0.chosen_ids, rejected: $0.prompt_ids + $0.rejected_ids,
                                                 promptLength: $0.prompt_ids.count) }
        return PairScorer.score(model: model, pairs: pairs, pairsPerBatch: 3).flatMap { [$0.chosenLogps, $0.rejectedLogps] }
    }

    /// The adapter directory `dir` as dpo-dist reads it (base_model_name_or_path resolved against
    /// the directory's parent) gives PeftModel.from_pretrained's summed log-probs of every pair.
    @discardableResult
    func assertPEFTsLogProbs(_ dir: String, _ logps: String, line: UInt = #line) throws -> (ModelDirectory.Loaded, AdapterDirectory.Config) {
        let expected = try peftLogps(logps)
        let (base, config) = try AdapterDirectory.load(dir)
        let reference = expected.flatMap { [$0.chosen_logps, $0.rejected_logps] }
        let ours = scores(base.model, against: expected)
        let worst = zip(ours, reference).map { abs($0 - $1) / abs($1) }.max()!
        let plain = scores(try ModelDirectory.load(config.baseDirectory).model, against: expected)
        let adapterEffect = zip(plain, reference).map { abs($0 - $1) / abs($1) }.max()!
        print("\(dir): summed log-probs max relative diff from PEFT's \(worst); the base alone differs by \(adapterEffect)")
        XCTAssertLessThanOrEqual(worst, 1e-4, line: line)
        XCTAssertGreaterThan(adapterEffect, 1e-2, "the adapter must change the model for the test to say something", line: line)
        return (base, config)
    }

    /// An adapter PEFT saved.
    func testAPEFTAdapterGivesPEFTsLogProbs() throws {
        let (base, config) = try assertPEFTsLogProbs(Self.adapter, TRLParityTests.lora + "/initial-all-linear.logps.jsonl")
        // PEFT saves all-linear as the list of every adapted module's path.
        XCTAssertEqual([config.settings.rank, Int(config.settings.alpha)], [8, 16])
        XCTAssertEqual(config.settings.targets.count, 14)
        XCTAssertEqual(base.model.adapters!.targetModules, ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
    }

    /// A PEFT adapter on Phi-3 (all-linear: qkv_proj, o_proj, gate_up_proj, down_proj), read back as
    /// PEFT saved it and written again byte for byte the same tensors.
    func testAPEFTAdapterOnPhi3sFusedProjections() throws {
        let dir = TRLParityTests.lora + "/initial-phi3-all-linear"
        let (base, config) = try assertPEFTsLogProbs(dir, dir + ".logps.jsonl")
        let adapters = try XCTUnwrap(base.model.adapters)
        XCTAssertEqual(adapters.targetModules, ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"])
        let peft = try SafetensorsFile(path: dir + "/adapter_model.safetensors")
        XCTAssertEqual(Set(peft.tensorNames), Set(adapters.parameters.tensors.map(\.name)))
        let out = Fixtures.temporaryDirectory("lora-phi3")
        try AdapterDirectory.save(adapters, to: out, baseModel: config.baseModel, companionsFrom: nil)
        let ours = try SafetensorsFile(path: out + "/" + AdapterDirectory.weightsFile)
        for name in peft.tensorNames {
            XCTAssertEqual(try ours.floats(name), try peft.floats(name), name)
            XCTAssertEqual(ours.tensors[name]?.shape, peft.tensors[name]?.shape, name)
        }
    }

    /// An adapter dpo-dist wrote (the output of `train --use-peft --lora-r 4 --lora-alpha 8
    /// --lora-target-modules q_proj,k_proj,down_proj`, 6 steps, committed) loads in PEFT with
    /// dpo-dist's log-probs (PEFT's computed by tools/check_saved_adapter.py); and dpo-dist still
    /// writes those bytes, so what it writes today is what PEFT was checked on.
    func testPEFTLoadsWhatDpoDistWrites() throws {
        let dir = TRLParityTests.lora + "/written-by-dpo-dist"
        let (base, config) = try assertPEFTsLogProbs(dir, dir + ".peft-logps.jsonl")
        let out = Fixtures.temporaryDirectory("lora-rewrite")
        try AdapterDirectory.save(base.model.adapters!, to: out, baseModel: config.baseModel, companionsFrom: nil)
        for file in [AdapterDirectory.configFile, AdapterDirectory.weightsFile] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/" + file)),
                           try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file)), file)
        }
    }

    /// What dpo-dist writes reads back as the same adapter, with PEFT's config keys and names.
    func testSavedAdapterReadsBack() throws {
        let (base, config) = try AdapterDirectory.load(Self.adapter)
        let adapters = try XCTUnwrap(base.model.adapters)
        let out = Fixtures.temporaryDirectory("lora-save")
        try AdapterDirectory.save(adapters, to: out, baseModel: config.baseDirectory, companionsFrom: config.baseDirectory)
        let (again, againConfig) = try AdapterDirectory.load(out)
        XCTAssertEqual([againConfig.settings.rank, Int(againConfig.settings.alpha)], [config.settings.rank, Int(config.settings.alpha)])
        XCTAssertEqual(again.model.adapters!.targetModules, adapters.targetModules)
        XCTAssertEqual(again.model.adapters!.parameters.tensors, adapters.parameters.tensors)
        XCTAssertTrue(again.model.adapters!.parameters.values.buffer.elementsEqual(adapters.parameters.values.buffer))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/tokenizer.json"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))) as! [String: Any]
        XCTAssertEqual(json["peft_type"] as? String, "LORA")
        XCTAssertEqual(json["task_type"] as? String, "CAUSAL_LM")
        XCTAssertEqual(json["lora_alpha"] as? Int, 16)
    }

    /// PEFT's initialisation: B zero (the adapted model is the base), A uniform in ±1/√in.
    func testPEFTInitialisationStartsAtTheBase() throws {
        let model = try ModelDirectory.load(Fixtures.model("llama-tied") + "/model").model
        let adapters = try LoRAAdapters(layout: model.layout, config: model.config,
                                        settings: LoRASettings(rank: 4, alpha: 8, targets: ["all-linear"], rslora: false))
        adapters.initializeAsPEFT(seed: 3)
        for t in adapters.parameters.tensors {
            let values = UnsafeBufferPointer(start: adapters.parameters.values.pointer + t.offset, count: t.count)
            if t.name.hasSuffix("lora_B.weight") {
                XCTAssertTrue(values.allSatisfy { $0 == 0 }, t.name)
            } else {
                let bound = 1 / Float(t.shape[1]).squareRoot()
                XCTAssertTrue(values.allSatisfy { abs($0) <= bound }, t.name)
                XCTAssertGreaterThan(values.map(abs).max()!, 0.9 * bound, t.name)  // spread over the range
            }
        }
        XCTAssertEqual(adapters.parameters.tensors.count, 2 * 7 * model.config.numLayers)
        let expected = try peftLogps(TRLParityTests.lora + "/initial-all-linear.logps.jsonl")
        let plain = scores(model, against: expected)
        model.attach(adapters)
        XCTAssertEqual(scores(model, against: expected), plain)
    }

    /// The adapters' gradient against central differences of the loss Σ w·logp, in double: A and B
    /// of every adapted linear (the base's weights get no gradient).
    func testAdapterGradientMatchesFiniteDifferences() throws {
        let (base, _) = try AdapterDirectory.load(Self.adapter)
        let model = base.model, adapters = model.adapters!
        model.enableGradients()
        XCTAssertNil(model.parameters.gradients)
        var batch = TokenBatch()
        let pairs = try peftLogps(TRLParityTests.lora + "/initial-all-linear.logps.jsonl").prefix(2)
        for p in pairs {
            PairScorer.append(TokenizedPair(chosen: p.prompt_ids + p.chosen_ids, rejected: p.prompt_ids + p.rejected_ids,
                                            promptLength: p.prompt_ids.count), to: &batch)
        }
        var rng = SplitMix64(seed: 5)
        let weights = (0..<batch.scoredCount).map { _ in Float(rng.nextUniform()) }
        func loss() -> Double {
            model.forward(batch)
            return zip(model.scoredLogProbs, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        _ = loss()
        adapters.parameters.gradients!.zero()
        weights.withUnsafeBufferPointer { model.backward(batch, dlogp: $0.baseAddress!) }
        let p = adapters.parameters.values.pointer, g = adapters.parameters.gradients!.pointer
        for t in adapters.parameters.tensors where t.name.contains("layers.0.") || t.name.contains("down_proj") {
            var worst = 0.0, norm = 0.0
            for i in stride(from: 0, to: t.count, by: max(1, t.count / 6)) {
                let j = t.offset + i, saved = p[j], h: Float = 1e-2
                p[j] = saved + h; let up = loss()
                p[j] = saved - h; let down = loss()
                p[j] = saved
                let numeric = (up - down) / Double(2 * h)
                worst = max(worst, abs(numeric - Double(g[j])))
                norm = max(norm, abs(numeric))
            }
            XCTAssertLessThanOrEqual(worst, 2e-2 * max(norm, 1e-2), "\(t.name): worst \(worst) of \(norm)")
        }
    }

    /// What cannot be trained is refused before any work, naming the key.
    func testRefusals() throws {
        var a = TrainingRuns.arguments("lora-refused", model: "llama-tied")
        a.usePeft = true
        a.loraDropout = 0.05
        XCTAssertThrowsError(try a.validate(for: .dpo)) { XCTAssertTrue("\($0)".contains("lora_dropout 0.05 is not available"), "\($0)") }
        a.loraDropout = 0
        a.loraTargetModules = ["q_proj", "lm_head"]
        XCTAssertThrowsError(try Trainer.dpo(args: a, comm: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("\"lm_head\" matches no linear layer"), "\($0)")
        }
        var smol = TrainingRuns.arguments("lora-smollm3", model: "smollm3")
        smol.usePeft = true
        XCTAssertThrowsError(try Trainer.dpo(args: smol, comm: SingleProcessCommunicator())) {
            XCTAssertTrue("\($0)".contains("PEFT has no default target modules for model_type smollm3"), "\($0)")
        }
        // An adapter whose config asks for what dpo-dist does not compute, or names no local base.
        let dir = Fixtures.temporaryDirectory("lora-config")
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.adapter + "/adapter_config.json"))) as! [String: Any]
        for (key, value, message) in [("use_dora", true as Any, "DoRA is not supported"),
                                      ("base_model_name_or_path", "HuggingFaceTB/SmolLM2-135M" as Any, "is not a local model directory"),
                                      ("target_modules", ".*proj" as Any, "a regular expression is not supported")] {
            var json = original
            json[key] = value
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
            XCTAssertThrowsError(try AdapterDirectory.readConfig(dir)) { XCTAssertTrue("\($0)".contains(message), "\(key): \($0)") }
        }
    }

    /// An adapter whose config has lora_dropout 0.05 (TRL's default) is not trained without it, but
    /// it evaluates (PEFT applies no dropout in eval mode).
    func testAnAdapterWithDropoutEvaluatesButDoesNotTrain() throws {
        let dir = Fixtures.temporaryDirectory("lora-dropout")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.adapter + "/adapter_config.json"))) as! [String: Any]
        json["lora_dropout"] = 0.05
        json["base_model_name_or_path"] = Fixtures.model("llama-tied") + "/model"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
        try FileManager.default.copyItem(atPath: Self.adapter + "/adapter_model.safetensors", toPath: dir + "/adapter_model.safetensors")
        var a = TrainingRuns.arguments("lora-dropout-run", model: "llama-tied")
        a.model = dir
        a.evalFile = a.trainFile
        let trainer = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        XCTAssertNotNil(try (trainer.objective as! DPOObjective).evaluate())
        XCTAssertThrowsError(try TrainingRuns.run(trainer)) { XCTAssertTrue("\($0)".contains("lora_dropout is 0.05"), "\($0)") }
    }

    /// use_peft on a whole model: only the adapters move; the reference is the base with the
    /// adapters off, so step 1's rewards are 0 (the adapter starts at the base) and later ones are
    /// the adapted policy against the base.
    func testUsePeftTrainsOnlyTheAdapters() throws {
        var a = TrainingRuns.arguments("lora-use-peft", model: "llama-tied", steps: 3, perDevice: 4)
        a.usePeft = true
        a.loraR = 4
        let (lines, trainer) = try TrainingRuns.dpo(a)
        let values = Metrics.values(lines)
        XCTAssertEqual(values[0]["rewards/margins"], 0)
        XCTAssertNotEqual(values[2]["rewards/margins"], 0)
        let start = try ModelDirectory.load(a.model).model
        XCTAssertTrue(trainer.policy.parameters.values.buffer.elementsEqual(start.parameters.values.buffer), "the base moved")
        XCTAssertEqual(trainer.trainable.count, trainer.policy.adapters!.parameters.count)
        XCTAssertEqual(trainer.policy.adapters!.targetModules, ["q_proj", "v_proj"])  // PEFT's default for llama
        // The memory plan counts the adapters' state, and no second model for the reference.
        let plan = Dictionary(trainer.memoryPlan().items, uniquingKeysWith: +)
        XCTAssertEqual(plan["reference"], 0)
        XCTAssertEqual(plan["LoRA adapters"], 4 * trainer.trainable.count)
        XCTAssertEqual(plan["AdamW moments"], 8 * trainer.trainable.count)
        // The output is an adapter directory on that base.
        let (saved, config) = try AdapterDirectory.load(a.outputDir)
        XCTAssertEqual(config.baseDirectory, a.model)
        XCTAssertTrue(saved.model.adapters!.parameters.values.buffer.elementsEqual(trainer.policy.adapters!.parameters.values.buffer))
    }

    /// Gemma 3's layout (four norms per layer, q/k norms, GeGLU): an all-linear adapter on each of
    /// its seven linears trains while the base stays as it was; PEFT's default for gemma3_text is q and v.
    func testAllLinearAdapterTrainsOnGemma3() throws {
        var a = TrainingRuns.arguments("lora-gemma3", model: "gemma3", steps: 2, perDevice: 4)
        a.usePeft = true
        a.loraR = 4
        a.loraTargetModules = ["all-linear"]
        let (lines, trainer) = try TrainingRuns.dpo(a)
        let values = Metrics.values(lines)
        XCTAssertEqual(values[0]["rewards/margins"], 0)  // B starts at zero: the adapted model is the base
        XCTAssertNotEqual(values[1]["rewards/margins"], 0)
        let adapters = try XCTUnwrap(trainer.policy.adapters)
        XCTAssertEqual(adapters.targetModules, ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
        XCTAssertEqual(adapters.parameters.tensors.count, 2 * 7 * 3)
        let start = try ModelDirectory.load(a.model).model
        XCTAssertTrue(trainer.policy.parameters.values.buffer.elementsEqual(start.parameters.values.buffer), "the base moved")
        var defaults = TrainingRuns.arguments("lora-gemma3-default", model: "gemma3", steps: 1, perDevice: 4)
        defaults.usePeft = true
        XCTAssertEqual(try TrainingRuns.dpo(defaults).trainer.policy.adapters?.targetModules, ["q_proj", "v_proj"])
    }
}

/// LoRA runs on several ranks, resumed, with ZeRO-1: the adapters are the ParameterSet that the
/// gradient sync, the optimizer and the checkpoints take, so the guarantees of full training hold.
final class LoRADistributedTests: XCTestCase {
    func arguments(_ tag: String, perDevice: Int = 2, accumulation: Int) -> TrainingArguments {
        var a = TrainingRuns.arguments(tag, steps: 4, perDevice: perDevice, accumulation: accumulation)
        a.usePeft = true
        a.loraR = 4
        a.loraTargetModules = ["all-linear"]
        a.evalFile = Fixtures.model("qwen2-untied") + "/pairs.jsonl"
        a.weightDecay = 0.01
        a.maxNewTokens = 2
        return a
    }

    func adapterValues(_ t: Trainer) -> [Float] { t.policy.adapters!.parameters.values.toArray() }

    /// Gradient checkpointing recomputes the adapters' products with the layer: the same bits. And
    /// with precomputed reference log-probs (the base with the adapters off, cached) the same run
    /// up to fp32 rounding.
    func testCheckpointingAndPrecomputedReferenceChangeNothing() throws {
        let (lines, trainer) = try TrainingRuns.dpo(arguments("lora-plain", accumulation: 2))
        var checkpointed = arguments("lora-gc", accumulation: 2)
        checkpointed.gradientCheckpointing = true
        let (gcLines, gc) = try TrainingRuns.dpo(checkpointed)
        XCTAssertEqual(Metrics.values(gcLines), Metrics.values(lines))
        XCTAssertEqual(adapterValues(gc), adapterValues(trainer))
        var precomputed = arguments("lora-precompute", accumulation: 2)
        precomputed.precomputeRefLogProbs = true
        // The cache packs other pairs together (other fp32 rounding), so rewards near 0 differ in
        // the last bits and accuracies can flip: the rewards and log-probs are compared, absolutely.
        let cached = Metrics.values(try TrainingRuns.dpo(precomputed).lines)
        for (x, y) in zip(cached, Metrics.values(lines)) {
            for key in ["rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected", "loss"]
                .flatMap({ [$0, "eval_" + $0] }) where y[key] != nil {
                XCTAssertEqual(x[key] ?? .nan, y[key]!, accuracy: 1e-5 * max(1, abs(y[key]!)), "precomputed reference: \(key)")
            }
        }
    }

    func simulated(_ a: TrainingArguments, ranks: Int, parallel: ParallelOptions) throws -> ([[String: Double]], [Float]) {
        let ranks = try InProcessWorld(size: ranks).run { comm in
            let t = try Trainer.dpo(args: a, comm: comm, parallel: parallel)
            return (lines: try TrainingRuns.run(t), adapters: t.policy.adapters!.parameters.values.toArray())
        }
        return (Metrics.values(ranks[0].lines), ranks[0].adapters)
    }

    /// 2 ranks (small all-reduce buckets, and ZeRO-1) equal one rank with twice the accumulation:
    /// the same metrics and the same adapter bits.
    func testTwoRanksAndZeroOneEqualOneRankWithDoubledAccumulation() throws {
        let (lines, trainer) = try TrainingRuns.dpo(arguments("lora-one", accumulation: 2))
        let one = Metrics.values(lines)
        for parallel in [ParallelOptions(bucketSizeMB: 0.01), ParallelOptions(zeroStage: 1)] {
            let (two, adapters) = try simulated(arguments("lora-two", accumulation: 1), ranks: 2, parallel: parallel)
            Metrics.assertSame(two, one, tolerance: 1e-6, "lora 2 ranks, zero_stage \(parallel.zeroStage)")
            XCTAssertEqual(adapters, adapterValues(trainer), "zero_stage \(parallel.zeroStage): final adapters")
        }
        XCTAssertEqual(one.filter { $0["eval_loss"] != nil }.count, 1)  // the eval against the base ran
    }

    /// Interrupted at step 3 and resumed: the metrics and the adapters of an uninterrupted run, bit
    /// for bit on one rank; from a ZeRO-1 checkpoint of 2 ranks resumed on one, the same adapter
    /// bits and metrics within 1e-12 (the metric sums add the ranks' shares in another order). The
    /// checkpoint is a PEFT adapter directory.
    func testResumeIsBitIdentical() throws {
        var a = arguments("lora-full", accumulation: 2)
        a.maxSteps = 5
        a.saveSteps = 3
        a.evalFile = nil
        let (full, uninterrupted) = try TrainingRuns.dpo(a)
        var resumed = a
        for ranks in [1, 2] {
            var split = a
            split.outputDir = Fixtures.temporaryDirectory("lora-split-\(ranks)")
            split.gradientAccumulationSteps = 2 / ranks
            let interrupted = split
            let before = try InProcessWorld(size: ranks).run { comm in
                try TrainingRuns.run(try Trainer.dpo(args: interrupted, comm: comm, parallel: ParallelOptions(zeroStage: ranks - 1)),
                                     interruptAfter: 3)
            }[0]
            let checkpoint = split.outputDir + "/checkpoint-3"
            XCTAssertTrue(AdapterDirectory.isAdapter(checkpoint))
            XCTAssertFalse(FileManager.default.fileExists(atPath: checkpoint + "/model.safetensors"))
            _ = try AdapterDirectory.load(checkpoint)
            resumed.outputDir = split.outputDir
            resumed.resumeFromCheckpoint = "auto"
            let (after, continued) = try TrainingRuns.dpo(resumed)
            if ranks == 1 {
                XCTAssertEqual(Metrics.values(before) + Metrics.values(after), Metrics.values(full))
            } else {
                Metrics.assertSame(Metrics.values(before) + Metrics.values(after), Metrics.values(full), tolerance: 1e-12, "resumed from 2 ranks")
            }
            XCTAssertEqual(adapterValues(continued), adapterValues(uninterrupted), "\(ranks) rank(s)")
            XCTAssertTrue(continued.policy.parameters.values.buffer.elementsEqual(uninterrupted.policy.parameters.values.buffer))
        }

        // A checkpoint of other LoRA settings is not this run's.
        var other = resumed
        other.loraAlpha = 64
        XCTAssertThrowsError(try TrainingRuns.dpo(other)) { XCTAssertTrue("\($0)".contains("lora_alpha 32.0 there, 64.0 now"), "\($0)") }
    }

    /// The qwen2-untied fixture saved in bf16, and the same (bf16-exact) values saved in fp32.
    func bf16AndFP32Copies(_ tag: String) throws -> (bf16: String, fp32: String) {
        let original = try ModelDirectory.load(Fixtures.model("qwen2-untied") + "/model")
        let bf16 = Fixtures.temporaryDirectory(tag + "-bf16") + "/model"
        try ModelDirectory.save(original.model, to: bf16, configJSON: original.configJSON, companionsFrom: original.directory, dtype: .bf16)
        let rounded = try ModelDirectory.load(bf16)
        let fp32 = Fixtures.temporaryDirectory(tag + "-fp32") + "/model"
        try ModelDirectory.save(rounded.model, to: fp32, configJSON: rounded.configJSON, companionsFrom: bf16, dtype: .f32)
        return (bf16, fp32)
    }

    /// `a` on both copies of `bf16AndFP32Copies` (each run in an output directory of its own).
    func runOnBothCopies(_ a: TrainingArguments, _ tag: String) throws
        -> (bf16: String, onBF16: (lines: [MetricsLine], trainer: Trainer), onFP32: (lines: [MetricsLine], trainer: Trainer)) {
        let (bf16, fp32) = try bf16AndFP32Copies(tag)
        var a = a, b = a
        a.model = bf16
        b.model = fp32
        b.outputDir = Fixtures.temporaryDirectory(tag + "-on-fp32")
        return (bf16, try TrainingRuns.dpo(a), try TrainingRuns.dpo(b))
    }

    /// A base stored in bf16 stays bf16, in its files' mapping: the memory plan counts 2 bytes for
    /// each of its decoder linears' weights, and the adapter trains exactly as on an fp32 copy of
    /// the same values (the same metrics and adapter bits), on one rank and on two (whose
    /// agreement check hashes the bf16 weights), with gradient checkpointing and ZeRO-1.
    func testABF16BaseStaysBF16AndTrainsAsItsFP32Copy() throws {
        var a = arguments("lora-on-bf16", accumulation: 2)
        a.gradientCheckpointing = true
        let (bf16, (lines, trainer), (expected, copy)) = try runOnBothCopies(a, "lora-base")
        a.model = bf16
        let frozen = try XCTUnwrap(trainer.policy.frozenWeights)
        XCTAssertTrue(try XCTUnwrap((trainer.objective as? DPOObjective)?.reference).frozenWeights === frozen, "the reference shares the base")
        XCTAssertNil(copy.policy.frozenWeights)
        XCTAssertEqual(frozen.tensorNames.count, 7 * trainer.policy.config.numLayers)
        XCTAssertEqual(Metrics.values(lines), Metrics.values(expected))
        XCTAssertEqual(adapterValues(trainer), adapterValues(copy))

        let plan = trainer.memoryPlan(), copyPlan = copy.memoryPlan()
        let items = Dictionary(plan.items, uniquingKeysWith: +)
        XCTAssertEqual(items["frozen bf16 weights (mapped from the files)"], 2 * frozen.elementCount)
        XCTAssertEqual(items["parameters"], 4 * (trainer.policy.parameterCount - frozen.elementCount))
        XCTAssertEqual(items["reference"], 0)
        // 2 bytes a frozen weight saved; the policy and the reference each widen a weight into an fp32 scratch.
        XCTAssertEqual(copyPlan.total - plan.total, 2 * frozen.elementCount - 2 * 4 * frozen.largestView)
        XCTAssertTrue(plan.line.contains("frozen bf16 weights (mapped from the files)"), plan.line)

        var two = a
        two.outputDir = Fixtures.temporaryDirectory("lora-on-bf16-two")
        two.gradientAccumulationSteps = 1
        let (twoLines, adapters) = try simulated(two, ranks: 2, parallel: ParallelOptions(zeroStage: 1))
        Metrics.assertSame(twoLines, Metrics.values(lines), tolerance: 1e-6, "2 ranks on a bf16 base")
        XCTAssertEqual(adapters, adapterValues(trainer))
    }

    /// Full training on a bf16 model: the policy is fp32 (it is trained), the reference, loaded
    /// again from the same files, keeps its decoder linears in bf16; the run equals the one on an
    /// fp32 copy, and the plan's reference is that much smaller.
    func testAFullRunOnABF16ModelKeepsItsReferenceInBF16() throws {
        let a = TrainingRuns.arguments("full-on-bf16", steps: 3, perDevice: 2, accumulation: 2)
        let (bf16, (lines, trainer), (expected, copy)) = try runOnBothCopies(a, "full-base")
        XCTAssertNil(trainer.policy.frozenWeights, "the policy is trained: fp32")
        XCTAssertNotNil(try XCTUnwrap((trainer.objective as? DPOObjective)?.reference).frozenWeights)
        XCTAssertNil(try XCTUnwrap((copy.objective as? DPOObjective)?.reference).frozenWeights)
        XCTAssertEqual(Metrics.values(lines), Metrics.values(expected))
        XCTAssertTrue(trainer.policy.parameters.values.buffer.elementsEqual(copy.policy.parameters.values.buffer))
        let reference = try ModelDirectory.weightBytes(bf16, frozen: true)
        XCTAssertGreaterThan(reference.bf16, 0)
        XCTAssertEqual(Dictionary(trainer.memoryPlan().items, uniquingKeysWith: +)["reference"], reference.fp32 + reference.bf16)
        XCTAssertEqual(Dictionary(copy.memoryPlan().items, uniquingKeysWith: +)["reference"], 4 * copy.policy.parameterCount)
    }
}
