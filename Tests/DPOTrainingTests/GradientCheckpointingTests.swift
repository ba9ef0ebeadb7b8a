import DPOComm
import DPOTestSupport
import XCTest
@testable import DPOData
@testable import DPOKernels
@testable import DPOModel
@testable import DPOTraining

/// `gradient_checkpointing`: backward recomputes each layer from its saved input, with the kernels,
/// inputs and weights of forward, so every gradient, parameter and metric keeps its bits; forward
/// keeps each layer's input and one layer's activations instead of every layer's.
final class GradientCheckpointingTests: XCTestCase {
    struct TRLTokens: Decodable { let prompt_ids: [Int], chosen_ids: [Int], rejected_ids: [Int] }

    func sameBits(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Bool {
        a.count == b.count && memcmp(a.baseAddress!, b.baseAddress!, a.count * MemoryLayout<Float>.stride) == 0
    }

    func values(_ p: ParameterSet) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: p.values.pointer, count: p.count) }
    func gradients(_ p: ParameterSet) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: p.gradients!.pointer, count: p.count) }

    /// One forward and backward of each fixture model's pairs (prompts shared, as train packs them),
    /// with and without checkpointing: the same log-probs and the same gradient, bit for bit. Twice
    /// over, so the second backward accumulates onto the first as gradient accumulation does.
    func assertForwardAndBackwardKeepTheirBits(matmul: () throws -> any MatmulBackend, _ what: String) throws {
        for name in Fixtures.modelNames {
            let dir = Fixtures.model(name)
            let trl = try JSONDecoder().decode([TRLTokens].self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/pairs.tokens.json")))
            var batches = [TokenBatch(), TokenBatch()]
            for (i, t) in trl.enumerated() {
                PairScorer.append(TokenizedPair(chosen: t.prompt_ids + t.chosen_ids, rejected: t.prompt_ids + t.rejected_ids,
                                                promptLength: t.prompt_ids.count), to: &batches[i % 2])
            }
            XCTAssertTrue(batches.allSatisfy { $0.prefixLengths.contains { $0 > 0 } }, "\(name): the batches share prompts")
            let kept = try ModelDirectory.load(dir + "/model", matmul: try matmul()).model
            let checkpointed = try ModelDirectory.load(dir + "/model", matmul: try matmul()).model
            kept.enableGradients()
            checkpointed.enableGradients(checkpointing: true)
            XCTAssertGreaterThan(kept.config.numLayers, 1, "\(name): a layer other than the last is recomputed")
            for batch in batches {
                let dlogp = (0..<batch.scoredCount).map { Float(($0 * 7) % 5) - 2.5 }
                for model in [kept, checkpointed] {
                    model.forward(batch)
                    dlogp.withUnsafeBufferPointer { model.backward(batch, dlogp: $0.baseAddress!) }
                }
                XCTAssertTrue(sameBits(kept.scoredLogProbs, checkpointed.scoredLogProbs), "\(name) \(what): log-probs")
                XCTAssertTrue(sameBits(gradients(kept.parameters), gradients(checkpointed.parameters)),
                              "\(name) \(what): gradients differ, worst relative \(Metrics.worstRelativeDifference(gradients(checkpointed.parameters), gradients(kept.parameters)))")
            }
            XCTAssertTrue(gradients(kept.parameters).contains { $0 != 0 }, "\(name): a gradient was computed")
        }
    }

    func testForwardAndBackwardKeepTheirBits() throws {
        try assertForwardAndBackwardKeepTheirBits(matmul: { OpenBLASFP32() }, "fp32")
    }

    /// With bf16 products the recomputed layers reuse the bf16 copies of the weights rounded for
    /// this pass (backward calls no new `weightsAreFixed`), and give forward's bits.
    func testForwardAndBackwardKeepTheirBitsWithBF16() throws {
        if let reason = OneDNNBF16.unavailableReason() { throw XCTSkip(reason) }
        try assertForwardAndBackwardKeepTheirBits(matmul: { try OneDNNBF16() }, "bf16")
    }

    /// With T a multiple of 16 no view is padded, so checkpointing saves exactly L − 1 layer slots
    /// (the fields of `LayerActivations`: 3 × (T, C), 2 × (T), 2 × (T, Q), 2 × (T, KV), (T, H),
    /// 3 × (T, I)) and costs nothing beyond what a frozen model's two residuals grow to, L + 1, and
    /// the head's kept softmax.
    func testActivationBytesShrinkByAllButOneLayer() throws {
        let load = { try ModelDirectory.load(Fixtures.model("smollm3") + "/model").model }
        let frozen = try load(), kept = try load(), checkpointed = try load()
        kept.enableGradients()
        checkpointed.enableGradients(checkpointing: true)
        let c = kept.config, T = 64
        func bytes(_ m: Transformer) -> Int { m.activationBytes(tokens: T, longestSequence: 32, scoredRows: T) }
        let slot = 4 * T * (3 * c.hiddenSize + 2 + 2 * c.qDim + 2 * c.kvDim + c.numHeads + 3 * c.intermediateSize)
        XCTAssertGreaterThan(c.numLayers, 1)
        XCTAssertEqual(bytes(kept) - bytes(checkpointed), (c.numLayers - 1) * slot)
        let gradientScratch = 4 * (2 * T * c.hiddenSize + 2 * T * c.qDim + 2 * T * c.kvDim + 3 * T * c.intermediateSize + T * c.hiddenSize)
        // A model that trains keeps the head's softmax of its T scored rows, which is also its head
        // scratch, where a frozen model has a scratch of headChunk rows.
        let keptSoftmax = 4 * (T - frozen.headChunk) * c.vocabSize
        XCTAssertEqual(bytes(checkpointed) - bytes(frozen), (c.numLayers - 1) * 4 * T * c.hiddenSize + gradientScratch + keptSoftmax)
        checkpointed.keptProbabilityBytes = 4 * T * c.vocabSize - 1
        XCTAssertEqual(bytes(checkpointed) - bytes(frozen), (c.numLayers - 1) * 4 * T * c.hiddenSize + gradientScratch,
                       "over the limit the softmax is recomputed, in a scratch of headChunk rows")
    }

    /// The start-up memory check counts the activations the run will keep: a budget between the two
    /// sizes refuses the run without checkpointing and lets it start with it.
    func testTheMemoryCheckCountsCheckpointedActivations() throws {
        func trainer(_ checkpointing: Bool) throws -> Trainer {
            var a = TrainingRuns.arguments("memory-checkpointing")
            a.gradientCheckpointing = checkpointing
            return try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        }
        let kept = try trainer(false), checkpointed = try trainer(true)
        let batch = kept.objective.largestMicroBatch()
        func activations(_ t: Trainer) -> Int {
            t.policy.activationBytes(tokens: batch.tokens, longestSequence: batch.longestSequence, scoredRows: batch.tokens)
        }
        XCTAssertLessThan(activations(checkpointed), activations(kept))
        let referenceActivations = kept.objective.referenceActivationBytes(tokens: batch.tokens, longestSequence: batch.longestSequence)
        XCTAssertEqual(referenceActivations, checkpointed.objective.referenceActivationBytes(tokens: batch.tokens, longestSequence: batch.longestSequence))
        // Parameters; gradients, AdamW moments and the reference's copy (no fp64 sum: one micro-batch).
        let state = 4 * kept.policy.parameterCount + 16 * kept.trainable.count + referenceActivations
        let budget = state + (activations(kept) + activations(checkpointed)) / 2
        kept.memoryBudget = budget
        checkpointed.memoryBudget = budget
        XCTAssertThrowsError(try kept.checkMemory()) { XCTAssertTrue("\($0)".contains("set max_length"), "\($0)") }
        XCTAssertNoThrow(try checkpointed.checkMemory())
    }

    /// Metrics lines (without timings) and final weights of a run, with and without checkpointing.
    func assertRunsAgree(_ a: TrainingArguments, sft: Bool = false, _ what: String) throws {
        func run(_ checkpointing: Bool) throws -> (metrics: [[String: Double]], trainer: Trainer) {
            var args = a
            args.outputDir = Fixtures.temporaryDirectory("checkpointing-\(checkpointing)")
            args.gradientCheckpointing = checkpointing
            let t = sft ? try Trainer.sft(args: args, comm: SingleProcessCommunicator())
                        : try Trainer.dpo(args: args, comm: SingleProcessCommunicator())
            XCTAssertEqual(t.policy.gradientCheckpointing, checkpointing)
            return (Metrics.values(try TrainingRuns.run(t)), t)
        }
        let kept = try run(false), checkpointed = try run(true)
        XCTAssertEqual(kept.metrics.count, a.maxSteps + (a.evalFile == nil ? 0 : 1), what)
        XCTAssertEqual(kept.metrics, checkpointed.metrics, "\(what): metrics")
        let before = try ModelDirectory.load(a.model).model
        XCTAssertFalse(sameBits(values(before.parameters), values(kept.trainer.policy.parameters)), "\(what): the run trained")
        XCTAssertTrue(sameBits(values(kept.trainer.policy.parameters), values(checkpointed.trainer.policy.parameters)),
                      "\(what): final weights differ, worst relative \(Metrics.worstRelativeDifference(values(checkpointed.trainer.policy.parameters), values(kept.trainer.policy.parameters)))")
    }

    func testDPORunKeepsEveryBit() throws {
        var a = TrainingRuns.arguments("dpo", steps: 3, accumulation: 2)
        a.evalFile = a.trainFile
        try assertRunsAgree(a, "DPO")
    }

    func testDPORunWithSeparatePromptsAndBF16KeepsEveryBit() throws {
        if let reason = OneDNNBF16.unavailableReason() { throw XCTSkip(reason) }
        var a = TrainingRuns.arguments("dpo-bf16", model: "llama-tied", steps: 2)
        a.bf16 = true
        try assertRunsAgree(a, "DPO bf16")
        a.sharePrompt = false
        try assertRunsAgree(a, "DPO bf16, prompts apart")
    }

    func testSFTRunKeepsEveryBit() throws {
        var a = TrainingRuns.arguments("sft", model: "llama-tied", steps: 3, learningRate: 3e-3)
        a.trainFile = Fixtures.root + "/conversational/sft.jsonl"
        try assertRunsAgree(a, sft: true, "SFT")
    }
}
