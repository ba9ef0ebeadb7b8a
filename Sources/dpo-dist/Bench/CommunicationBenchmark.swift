import DPOComm
import DPOModel
import DPOSupport
import DPOTraining
import Foundation

/// Random sequences trained with a plain NLL objective: the training step's computation and
/// communication on any model shape, without data or model files (`dpo-dist bench-comm`).
final class SyntheticObjective: TrainingObjective {
    let policy: Transformer
    let sequences: [[Int]]
    private var batch = TokenBatch()

    init(policy: Transformer, sequences: [[Int]]) {
        self.policy = policy
        self.sequences = sequences
    }

    var exampleCount: Int { sequences.count }
    var fingerprint: UInt64 { 0 }
    var evalFingerprint: UInt64 { 0 }
    func largestMicroBatch() -> (tokens: Int, longestSequence: Int, longestExample: String) {
        let longest = sequences.map(\.count).max() ?? 0
        return (longest, longest, "a random sequence")
    }
    func normalizerWeight(of example: Int) -> Double { Double(sequences[example].count - 1) }
    func tokens(of example: Int) -> Int { sequences[example].count }
    func prepare(outputDir: String) throws {}
    func writeReport(outputDir: String, metrics: [(String, Double)]) throws {}
    func evaluate() throws -> StepSums? { nil }
    func metrics(_ sums: StepSums, prefix: String) -> [(String, Double)] { [] }

    func trainMicroBatch(_ examples: [Int], normalizer: Double, sums: inout StepSums) throws {
        batch.removeAll()
        for e in examples { batch.append(sequences[e], scoreFrom: 1) }
        policy.forward(batch)
        let dlogp = [Float](repeating: Float(-1 / normalizer), count: batch.scoredCount)
        dlogp.withUnsafeBufferPointer { policy.backward(batch, dlogp: $0.baseAddress!) }
        sums[.loss] -= policy.scoredLogProbs.reduce(0.0) { $0 + Double($1) } / normalizer
        sums[.tokens] += Double(batch.tokenCount)
    }
}

public struct CommunicationBenchmark {
    public struct Result {
        public var stepSeconds: Double
        /// Time each step waited at the end for gradient reductions still running.
        public var exposedSeconds: Double
        /// Time each step spent inside the non-blocking reduction calls (start, progress, wait).
        public var inCallsSeconds: Double
        /// A blocking all-reduce of the whole fp64 gradient, timed on its own.
        public var allReduceSeconds: Double
        public var gradientBytes: Double
        public var parameters: Int
    }

    /// Trains `steps` steps (after one warm-up) of one sequence of `tokens` tokens per rank.
    public static func run(config: ModelConfig, tokens: Int, steps: Int, comm: Communicator,
                           parallel: ParallelOptions) throws -> Result {
        let policy = Transformer(config: config)
        policy.initializeRandom(seed: 1)
        var rng = SplitMix64(seed: 3)
        let sequences = (0..<(comm.worldSize * (steps + 1))).map { _ in
            (0..<tokens).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        }
        var args = TrainingArguments()
        args.perDeviceTrainBatchSize = 1
        args.maxSteps = steps + 1
        args.learningRate = 1e-5
        args.shuffle = false
        let objective = SyntheticObjective(policy: policy, sequences: sequences)
        let trainer = try Trainer(args: args, comm: comm, policy: policy, configJSON: [:], objective: objective, parallel: parallel)
        var stepTotal = 0.0, exposed = 0.0, inCalls = 0.0
        for s in 0...steps {
            let before = comm.secondsInNonBlockingCalls + trainer.blockingSeconds
            let report = try trainer.step()
            if s > 0 {
                stepTotal += report.seconds
                exposed += trainer.lastCommunicationWait
                inCalls += comm.secondsInNonBlockingCalls + trainer.blockingSeconds - before
            }
        }
        // The same bytes through one blocking all-reduce, for the reduction's own cost.
        let n = policy.parameterCount
        let buffer = UnsafeMutablePointer<Double>.allocate(capacity: n)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: n)
        comm.barrier()
        let start = DispatchTime.now().uptimeNanoseconds
        comm.allReduceSum(buffer, count: n)
        let allReduce = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Result(stepSeconds: stepTotal / Double(steps), exposedSeconds: exposed / Double(steps),
                      inCallsSeconds: inCalls / Double(steps),
                      allReduceSeconds: allReduce, gradientBytes: Double(n * 8), parameters: n)
    }
}
