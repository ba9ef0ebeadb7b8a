import DPOTestSupport
import XCTest
@testable import DPOComm
@testable import DPOKernels
@testable import DPOTraining

/// N ranks (threads of this process) give the numbers of one rank with N times the accumulation.
final class DistributedTests: XCTestCase {
    func arguments(_ tag: String, perDevice: Int, accumulation: Int) -> TrainingArguments {
        var a = TrainingRuns.arguments(tag, perDevice: perDevice, accumulation: accumulation)
        a.evalFile = Fixtures.model("qwen2-untied") + "/pairs.jsonl"
        a.weightDecay = 0.01
        a.maxNewTokens = 4
        a.seed = 11
        return a
    }

    func assertSameRun(_ a: [[String: Double]], _ b: [[String: Double]], tolerance: Double, line: UInt = #line) {
        Metrics.assertSame(a, b, tolerance: tolerance, line: line)
    }

    func single(_ a: TrainingArguments) throws -> ([[String: Double]], Trainer) {
        let (lines, trainer) = try TrainingRuns.dpo(a)
        return (Metrics.values(lines), trainer)
    }

    func simulated(_ a: TrainingArguments, ranks: Int, parallel: ParallelOptions = ParallelOptions()) throws -> ([[String: Double]], FloatBuffer) {
        let ranks = try InProcessWorld(size: ranks).run { comm in
            let t = try Trainer.dpo(args: a, comm: comm, parallel: parallel)
            return (lines: try TrainingRuns.run(t), params: t.policy.parameters.values)
        }
        return (Metrics.values(ranks[0].lines), ranks[0].params)
    }

    func testFourRanksEqualOneRankWithFourTimesTheAccumulation() throws {
        let (reference, trainer) = try single(arguments("one", perDevice: 2, accumulation: 4))
        let (four, params) = try simulated(arguments("four", perDevice: 2, accumulation: 1), ranks: 4)
        assertSameRun(four, reference, tolerance: 1e-6)
        let worst = Metrics.worstRelativeDifference(params.buffer, trainer.policy.parameters.values.buffer)
        XCTAssertLessThanOrEqual(worst, 1e-5, "final parameters")
        // And two ranks with two micro-steps each.
        let (two, _) = try simulated(arguments("two", perDevice: 2, accumulation: 2), ranks: 2)
        assertSameRun(two, reference, tolerance: 1e-6)
    }

    /// --reduce-dtype float32 sums the ranks' gradients in fp32: the run stays within fp32 rounding of
    /// the fp64 one, with one micro-batch per rank and with two (added in fp64 on the rank first).
    func testFloat32ReductionStaysWithinRoundingOfTheExactSum() throws {
        let float32 = ParallelOptions(bucketSizeMB: 0.01, reduceDtype: .float32)
        let (four, _) = try single(arguments("f32-one-4", perDevice: 2, accumulation: 2))
        let (twoRanks, _) = try simulated(arguments("f32-two", perDevice: 2, accumulation: 1), ranks: 2, parallel: float32)
        assertSameRun(twoRanks, four, tolerance: 1e-5)
        let (eight, trainer) = try single(arguments("f32-one-8", perDevice: 2, accumulation: 4))
        let (accumulated, params) = try simulated(arguments("f32-two-acc", perDevice: 2, accumulation: 2), ranks: 2, parallel: float32)
        assertSameRun(accumulated, eight, tolerance: 1e-5)
        // Final parameters: within 0.1% of how far the run moved them (the reference is the starting policy).
        let start = try XCTUnwrap((trainer.objective as? DPOObjective)?.reference).parameters.values
        let apart = Metrics.differenceOverUpdate(params, trainer.policy.parameters.values, start: start)
        print("float32 reduction: final parameters apart by \(apart) of the run's update")
        XCTAssertLessThanOrEqual(apart, 1e-3)
    }

    /// The time the ranks spend in blocking reductions is counted (the bench's communication), and
    /// only buckets reduced while backward runs count as inside backward: ZeRO-1 reduce-scatters and
    /// gathers after it.
    func testBlockingCommunicationIsTimedWhereItRuns() throws {
        for (name, parallel) in [("zero1", ParallelOptions(zeroStage: 1)), ("buckets", ParallelOptions(bucketSizeMB: 0.01))] {
            let a = arguments("timed-\(name)", perDevice: 2, accumulation: 1)
            let seconds = try InProcessWorld(size: 2).run { comm in
                let t = try Trainer.dpo(args: a, comm: comm, parallel: parallel)
                try TrainingRuns.run(t)
                return (all: t.blockingSeconds, inBackward: t.blockingSecondsInBackward)
            }
            for (rank, s) in seconds.enumerated() {
                XCTAssertGreaterThan(s.all, 0, "\(name), rank \(rank)")
                if parallel.zeroStage >= 1 {
                    XCTAssertEqual(s.inBackward, 0, "\(name), rank \(rank)")
                } else {
                    XCTAssertGreaterThan(s.inBackward, 0, "\(name), rank \(rank)")
                    XCTAssertLessThanOrEqual(s.inBackward, s.all, "\(name), rank \(rank)")
                }
            }
        }
    }

    /// ZeRO-1 and small gradient buckets change how gradients travel, not what they sum to; and a
    /// ZeRO-1 checkpoint taken on 4 ranks resumes on 2. (Micro-batches keep the same pairs in every
    /// run: packing a different number of sequences changes fp32 rounding in the forward pass.)
    func testZeroStageOneAndBucketsGiveTheSameRun() throws {
        let (reference, trainer) = try single(arguments("plain", perDevice: 2, accumulation: 2))
        let (zero, zeroParams) = try simulated(arguments("zero", perDevice: 2, accumulation: 1), ranks: 2,
                                               parallel: ParallelOptions(zeroStage: 1))
        assertSameRun(zero, reference, tolerance: 1e-6)
        XCTAssertLessThanOrEqual(zip(zeroParams.buffer, trainer.policy.parameters.values.buffer).map { abs($0 - $1) }.max()!, 1e-6)
        let (buckets, _) = try simulated(arguments("buckets", perDevice: 2, accumulation: 1), ranks: 2,
                                         parallel: ParallelOptions(bucketSizeMB: 0.01))
        assertSameRun(buckets, reference, tolerance: 1e-6)

        // Global batch 8 throughout: 1 rank × 4 micro-steps, 4 ranks × 1, 2 ranks × 2.
        let (uninterrupted, _) = try single(arguments("global8", perDevice: 2, accumulation: 4))
        var a = arguments("resume-4-2", perDevice: 2, accumulation: 1)
        a.saveSteps = 2
        let interrupted = a
        try InProcessWorld(size: 4).run { comm in
            try TrainingRuns.run(try Trainer.dpo(args: interrupted, comm: comm, parallel: ParallelOptions(zeroStage: 1)),
                                 interruptAfter: 2)
        }
        var b = arguments("unused", perDevice: 2, accumulation: 2)
        b.outputDir = a.outputDir
        b.saveSteps = 2
        b.resumeFromCheckpoint = "auto"
        let (resumed, _) = try simulated(b, ranks: 2, parallel: ParallelOptions(zeroStage: 1))
        assertSameRun(resumed, Array(uninterrupted.dropFirst(2)), tolerance: 1e-6)
    }

    /// The last batch of an epoch can leave a rank without pairs; it must still take part in every
    /// reduction (24 pairs in batches of 5 × 2 ranks: the third batch has 4, all on rank 0).
    func testARankWithAnEmptyShareOfTheLastBatch() throws {
        var a = arguments("short-batch", perDevice: 5, accumulation: 1)
        a.evalFile = nil
        a.maxSteps = -1
        a.numTrainEpochs = 1
        var b = a
        b.perDeviceTrainBatchSize = 5
        b.gradientAccumulationSteps = 2
        b.outputDir = Fixtures.temporaryDirectory("short-batch-1")
        let (reference, _) = try single(b)
        for parallel in [ParallelOptions(bucketSizeMB: 0.01), ParallelOptions(bucketSizeMB: 0.01, blockingBuckets: false), ParallelOptions(zeroStage: 1),
                         ParallelOptions(bucketSizeMB: 0.01, reduceDtype: .float32)] {
            a.outputDir = Fixtures.temporaryDirectory("short-batch-2")
            let (two, _) = try simulated(a, ranks: 2, parallel: parallel)
            assertSameRun(two, reference, tolerance: 1e-6)
        }
    }

    /// Trains on 2 in-process ranks, rank 1 with the arguments and options `rankOne` makes; each
    /// rank's error (both must stop).
    func errorsOfRanksThatDiffer(_ tag: String, rankOne: @escaping @Sendable (inout TrainingArguments, inout ParallelOptions) -> Void,
                                 line: UInt = #line) throws -> [String] {
        var a = arguments(tag, perDevice: 2, accumulation: 1)
        a.outputDir = Fixtures.temporaryDirectory(tag)
        let base = a
        let outcomes = try InProcessWorld(size: 2).run { comm -> String? in
            var a = base, parallel = ParallelOptions()
            if comm.rank == 1 { rankOne(&a, &parallel) }
            do {
                try TrainingRuns.run(try Trainer.dpo(args: a, comm: comm, parallel: parallel))
                return nil
            } catch {
                return "\(error)"
            }
        }
        let errors = outcomes.compactMap { $0 }
        XCTAssertEqual(errors.count, 2, "both ranks stop", line: line)
        return errors
    }

    /// A rank started with other arguments stops every rank, and says what differs.
    func testRanksThatDisagreeStopTogether() throws {
        let errors = try errorsOfRanksThatDiffer("disagree") { a, _ in a.beta = 0.2 }
        XCTAssertTrue(errors.contains { $0.contains("rank 1 differs from rank 0 in its training arguments") }, "\(errors)")
    }

    /// Run options and eval data are part of the start-up agreement too: ranks that differ in
    /// --bucket-size-mb would reduce different buckets and hang; they stop at start instead.
    func testRanksWithOtherRunOptionsOrEvalDataStopTogether() throws {
        let errors = try errorsOfRanksThatDiffer("disagree-options") { a, parallel in
            parallel.bucketSizeMB = 1
            a.evalFile = Fixtures.root + "/trl/train.jsonl"
        }
        XCTAssertTrue(errors.contains { $0.contains("run options") && $0.contains("eval data") }, "\(errors)")
    }

    /// The reference log-probs are precomputed with the pairs split over the ranks and gathered: the
    /// cache 2 ranks write is byte for byte the one 1 rank writes, and the runs agree.
    func testPrecomputeIsSplitOverTheRanks() throws {
        var one = arguments("precompute-1", perDevice: 2, accumulation: 2)
        one.precomputeRefLogProbs = true
        one.perDeviceEvalBatchSize = 3
        one.evalFile = nil
        let (reference, _) = try single(one)
        var two = one
        two.gradientAccumulationSteps = 1
        two.outputDir = Fixtures.temporaryDirectory("precompute-2")
        let (split, _) = try simulated(two, ranks: 2)
        assertSameRun(split, reference, tolerance: 1e-6)
        func cache(_ dir: String) throws -> Data {
            let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasPrefix("ref_logps-") })
            return try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        XCTAssertEqual(try cache(two.outputDir), try cache(one.outputDir))
    }
}
