import DPOComm
import DPOData
import DPOKernels
import DPOModel
import DPOSupport
import DPOTraining
import Foundation
import Tokenization

/// A DPO workload timed step by step (`dpo-dist bench`): the reference precompute, then warm-up
/// steps and timed steps of the real trainer, with where each step's time went, the model FLOPs
/// executed, the GEMM rate of the same backend at the model's shapes measured in the same run on
/// every rank at once, and each rank's peak RSS.
struct TrainingBenchmark {
    struct Workload {
        var args: TrainingArguments
        /// Pre-tokenized pairs (the synthetic workload); nil reads args.trainFile.
        var pairs: PreferenceDataset?
        var description: String
    }

    struct StepTimes {
        var total = 0.0, forward = 0.0, backward = 0.0, reference = 0.0, communication = 0.0, optimizer = 0.0
        var other: Double { max(0, total - forward - backward - reference - communication - optimizer) }
    }

    struct Result {
        var precomputeSeconds: Double?
        var precomputedPairs: Int
        var steps: [StepTimes]
        var median: StepTimes
        var pairsPerStep: Int
        var tokensPerStep: Double
        var flopsPerStep: Double
        /// The products' rate measured after each timed step (summed over the ranks), and each step's
        /// executed model FLOP rate as a share of the rate measured next to it.
        var gemmRates: [Double]
        var flopShares: [Double]
        var gemmShapes: String
        var peakRSS: [Double]
        /// Page faults (minor and major) inside the timed steps, summed over the ranks: a step that
        /// touches memory it did not touch before (a fresh allocation) shows here.
        var stepPageFaults: Int
        var backend: String
        var parameters: Int
    }

    /// Random token ids shaped like the workload: prompts of about `promptTokens` tokens and
    /// completions of about `completionTokens`, each length drawn within ±12.5% (seeded).
    static func syntheticPairs(count: Int, promptTokens: Int, completionTokens: Int, vocab: Int, seed: UInt64) -> PreferenceDataset {
        var rng = SplitMix64(seed: seed)
        func length(_ mean: Int) -> Int {
            let spread = max(mean / 8, 0)
            return max(1, mean - spread + Int(rng.next() % UInt64(2 * spread + 1)))
        }
        func ids(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) } }
        var pairs: [TokenizedPair] = []
        for _ in 0..<count {
            let prompt = ids(length(promptTokens))
            pairs.append(TokenizedPair(chosen: prompt + ids(length(completionTokens)), rejected: prompt + ids(length(completionTokens)),
                                       promptLength: prompt.count))
        }
        return PreferenceDataset(pairs: pairs, lines: (0..<count).map { $0 + 1 })
    }

    /// Writes a model directory of `config`'s shape with random weights (and a small byte-level
    /// tokenizer, which the synthetic pairs never use), for the reference to load as the trainer does.
    static func writeSyntheticModel(config: ModelConfig, to directory: String, seed: UInt64) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = try ModelInit.createModelDirectory(directory, options: ModelInit.Options(), overwrite: true)
        let model = Transformer(config: config)
        model.initializeRandom(seed: seed, std: 0.02)
        var json = config.json()
        json["rms_norm_eps"] = 1e-5
        try ModelDirectory.save(model, to: directory, configJSON: json, companionsFrom: nil, dtype: .f32)
    }

    /// Useful FLOPs of one forward pass over `pairs` packed as the trainer packs them.
    static func forwardFLOPs(config c: ModelConfig, pairs: [TokenizedPair], sharePrompt: Bool) -> Double {
        var tokens = 0.0, attentionPairs = 0.0, scored = 0.0
        for p in pairs {
            let from = max(p.promptLength, 1)
            let shared = sharePrompt ? PairScorer.sharedLength(p) : 0
            let lc = Double(p.chosen.count), own = Double(p.rejected.count - shared)
            tokens += lc + own
            attentionPairs += lc * (lc + 1) / 2 + own * Double(shared) + own * (own + 1) / 2
            scored += Double(max(p.chosen.count - from, 0) + max(p.rejected.count - from, 0))
        }
        return KernelBenchmark.forwardFLOPs(config: c, tokens: tokens, attentionPairs: attentionPairs, scored: scored)
    }

    /// The rate of a backend over one decoder layer's seven linear products at `rows` token rows (as
    /// the model runs them: activations × weightsᵀ, weights fixed). Its buffers are made once, so the
    /// bench can measure it between steps without allocating.
    final class GemmProbe {
        let rows: Int
        private let matmul: any MatmulBackend
        private let shapes: [(n: Int, k: Int)]
        private let weights: FloatBuffer, input: FloatBuffer, output: FloatBuffer
        private let flops: Double

        init(config c: ModelConfig, rows m: Int, matmul: any MatmulBackend) {
            rows = m
            self.matmul = matmul
            shapes = [(c.qDim, c.hiddenSize), (c.kvDim, c.hiddenSize), (c.kvDim, c.hiddenSize), (c.hiddenSize, c.qDim),
                      (c.intermediateSize, c.hiddenSize), (c.intermediateSize, c.hiddenSize), (c.hiddenSize, c.intermediateSize)]
            let widest = m * max(c.intermediateSize, c.qDim, c.hiddenSize)
            weights = FloatBuffer(count: shapes.map { $0.n * $0.k }.reduce(0, +))
            input = FloatBuffer(count: widest)
            output = FloatBuffer(count: widest)
            var rng = SplitMix64(seed: 11)
            for i in 0..<weights.count { weights.pointer[i] = rng.nextGaussian() * 0.02 }
            for i in 0..<input.count { input.pointer[i] = rng.nextGaussian() }
            flops = shapes.reduce(0) { $0 + 2 * Double(m) * Double($1.n) * Double($1.k) }
            matmul.weightsAreFixed(UnsafeBufferPointer(start: weights.pointer, count: weights.count))
        }

        /// GFLOP/s: the best of `repeats` rounds after one untimed round.
        func measure(repeats: Int = 3) -> Double {
            var best = Double.infinity
            for _ in 0...repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                var offset = 0
                for (n, k) in shapes {
                    matmul.gemm(transA: false, transB: true, m: rows, n: n, k: k, a: input.pointer, lda: k, b: weights.pointer + offset,
                                ldb: k, beta: 0, c: output.pointer, ldc: n)
                    offset += n * k
                }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return flops / best / 1e9
        }
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    private static func usage() -> rusage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage
    }

    /// Page faults of this process so far, minor and major.
    static func pageFaults() -> Int {
        let u = usage()
        return u.ru_minflt + u.ru_majflt
    }

    /// Peak resident set of this process in bytes.
    static func peakRSS() -> Double { Double(usage().ru_maxrss) * 1024 }

    static func run(_ w: Workload, warmup: Int, steps: Int, comm: Communicator, parallel: ParallelOptions,
                    progress: (String) -> Void) throws -> Result {
        var args = w.args
        args.maxSteps = warmup + steps
        let loaded = try ModelDirectory.load(args.model, matmul: try args.makeMatmul())
        let policy = loaded.model
        // DPO_DIST_SHAPE_TIMES=N (N > 1) lists the N slowest product shapes after the steps; any other value, 25.
        let shapeTimes = ProcessInfo.processInfo.environment["DPO_DIST_SHAPE_TIMES"]
        (policy.matmul as? OneDNNBF16)?.keepsShapeTimes = shapeTimes != nil
        let tokenizer = try Tokenizer(directory: args.model)
        let objective: DPOObjective
        if let pairs = w.pairs {
            objective = try DPOObjective(args: args, comm: comm, policy: policy, tokenizer: tokenizer, train: pairs, eval: nil)
        } else {
            objective = try DPOObjective(args: args, comm: comm, policy: policy, tokenizer: tokenizer)
        }
        let trainer = try Trainer(args: args, comm: comm, policy: policy, configJSON: loaded.configJSON, objective: objective,
                                  parallel: parallel)
        var precompute: Double?
        if args.precomputeRefLogProbs {
            progress("precomputing the reference log-probs of \(objective.train.count) pairs…")
            comm.barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            try objective.prepare(outputDir: args.outputDir)
            comm.barrier()
            precompute = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        trainer.reserveActivations()
        // The GEMM rate on every rank at once, as the ranks compute during a step, measured after each
        // timed step: a machine whose speed drifts (a shared VM's turbo and neighbours) then drifts under
        // both, where one measurement after all the steps could read well above or below them.
        let microPairs = Array(objective.train.pairs.prefix(args.perDeviceTrainBatchSize))
        let rows = microPairs.reduce(0) { $0 + PairScorer.packedTokens($1, sharePrompt: args.sharePrompt) }
        let probe = GemmProbe(config: policy.config, rows: max(rows, 1), matmul: try args.makeMatmul())
        var times: [StepTimes] = []
        var pairsSeen = 0, tokens = 0.0
        var stepFLOPs: [Double] = [], rates: [Double] = []
        var faults = 0
        for s in 0..<(warmup + steps) {
            let before = (objective.reference?.forwardSeconds ?? 0, policy.backwardSeconds, policy.forwardSeconds,
                          comm.secondsInNonBlockingCalls + trainer.blockingSeconds, trainer.optimizerSeconds,
                          trainer.blockingSecondsInBackward)
            let batch = trainer.globalBatch(step: s)
            let faultsBefore = pageFaults()
            let report = try trainer.step()
            let stepFaults = pageFaults() - faultsBefore
            let reference = (objective.reference?.forwardSeconds ?? 0) - before.0
            let communication = comm.secondsInNonBlockingCalls + trainer.blockingSeconds - before.3
            // Blocking bucket reductions that run inside backward are counted as communication only.
            var t = StepTimes(total: report.seconds, forward: policy.forwardSeconds - before.2,
                              backward: max(0, policy.backwardSeconds - before.1 - (trainer.blockingSecondsInBackward - before.5)),
                              reference: reference, communication: communication,
                              optimizer: trainer.optimizerSeconds - before.4)
            t.total = report.seconds
            progress(String(format: "step %d%@: %.3f s", s + 1, s < warmup ? " (warm-up)" : "", report.seconds))
            if s >= warmup {
                times.append(t)
                faults += stepFaults
                pairsSeen += batch.count
                tokens += report.sums[.tokens]
                let pairs = batch.map { objective.train.pairs[$0] }
                var f = 3 * forwardFLOPs(config: policy.config, pairs: pairs, sharePrompt: args.sharePrompt)
                if !args.precomputeRefLogProbs && objective.loss.needsReference {
                    f += forwardFLOPs(config: policy.config, pairs: pairs, sharePrompt: args.sharePrompt)
                }
                stepFLOPs.append(f)
                comm.barrier()
                rates.append(probe.measure())
            }
        }
        // Every rank's product rate, summed over ranks: the machine's rate in this layout.
        rates.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: $0.count) }
        let shares = (0..<times.count).map { stepFLOPs[$0] / times[$0].total / 1e9 / rates[$0] }
        var rss = [Double](repeating: 0, count: comm.worldSize)
        rss[comm.rank] = peakRSS()
        rss.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: comm.worldSize) }
        var faultSum = [Double(faults)]
        faultSum.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: 1) }
        if comm.isMain, let dnnl = policy.matmul as? OneDNNBF16, dnnl.keepsShapeTimes {
            let asked = Int(shapeTimes ?? "") ?? 0
            for line in dnnl.slowestShapes(asked > 1 ? asked : 25) { progress("  " + line) }
        }
        let m = StepTimes(total: median(times.map(\.total)), forward: median(times.map(\.forward)),
                          backward: median(times.map(\.backward)), reference: median(times.map(\.reference)),
                          communication: median(times.map(\.communication)), optimizer: median(times.map(\.optimizer)))
        return Result(precomputeSeconds: precompute, precomputedPairs: objective.train.count, steps: times, median: m,
                      pairsPerStep: steps > 0 ? pairsSeen / steps : 0, tokensPerStep: steps > 0 ? tokens / Double(steps) : 0,
                      flopsPerStep: steps > 0 ? stepFLOPs.reduce(0, +) / Double(steps) : 0, gemmRates: rates, flopShares: shares,
                      gemmShapes: "one layer's 7 linear products at \(rows) rows", peakRSS: rss, stepPageFaults: Int(faultSum[0]),
                      backend: policy.matmul.name, parameters: policy.parameterCount)
    }
}
