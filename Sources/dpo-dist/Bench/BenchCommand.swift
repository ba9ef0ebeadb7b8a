import ArgumentParser
import DPOComm
import DPODistributed
import DPOKernels
import DPOModel
import DPOSupport
import DPOTraining
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Times DPO training steps: pairs/s, tokens/s, where each step's time goes, FLOP rate, peak RSS.",
        discussion: """
        By default the workload is a SmolLM2-135M-shaped Llama with random weights (hidden 576, 30 layers, \
        9 heads, 3 KV heads, intermediate 1536, vocab 49152, tied) on random token pairs with prompts of \
        about 128 tokens and completions of about 125, 4 pairs per optimizer step, reference log-probs \
        precomputed. --model and --train-file bench any model and data instead. Run it alone or under \
        mpirun (launch/mpi N bench); the pairs of a step are split over the ranks. \
        Prints the precompute's time, the median step and its parts (policy forward, backward, reference \
        forward, gradient communication, optimizer), the model FLOPs executed per step and their rate as a \
        share of the rate the same backend reaches on the model's own layer products, measured in the same \
        run on every rank at once, and each rank's peak RSS. Build in release mode (swift build -c release).
        """)

    @Option(help: "A model directory (default: the synthetic SmolLM2-135M-shaped model).") var model: String?
    @Option(help: "Preference pairs to train on (needs --model; default: synthetic pairs).") var trainFile: String?
    @Option(help: "Synthetic pairs: how many (all are precomputed; steps take them in order).") var pairs = 64
    @Option(help: "Synthetic pairs: mean prompt length in tokens.") var promptTokens = 128
    @Option(help: "Synthetic pairs: mean completion length in tokens.") var completionTokens = 125
    @Option(help: "Synthetic model: decoder layers (30 for SmolLM2-135M).") var layers = 30
    @Option(help: "Pairs per optimizer step over all ranks.") var pairsPerStep = 4
    @Option(help: "Micro-batches per rank per step (gradient accumulation).") var gradientAccumulationSteps = 1
    @Option(help: "Steps before the timed ones.") var warmup = 2
    @Option(help: "Timed steps.") var steps = 4
    @Flag(inversion: .prefixedNo, help: "Precompute the reference log-probs (and time it) instead of a reference forward each step.")
    var precomputeRefLogProbs = true
    @Flag(help: "bf16 matrix products through oneDNN, as train --bf16.") var bf16 = false
    @Flag(inversion: .prefixedNo, help: "Compute each pair's prompt once (as train does by default); --no-share-prompt packs the two sequences apart.")
    var sharePrompt = true
    @Flag(help: "Recompute each layer's forward in backward from its saved input, as train --gradient-checkpointing.")
    var gradientCheckpointing = false
    @Option(help: "Where the synthetic model and the reference cache go (default: a folder under the temporary directory).")
    var workDir: String?
    @OptionGroup var runOptions: RunOptions

    func validate() throws {
        if trainFile != nil && model == nil { throw ValidationError("--train-file needs --model") }
        guard pairs >= 1, promptTokens >= 1, completionTokens >= 1, layers >= 1, pairsPerStep >= 1, steps >= 1, warmup >= 0,
              gradientAccumulationSteps >= 1 else {
            throw ValidationError("counts must be at least 1 (--warmup at least 0)")
        }
    }

    func run() throws {
        try runReportingErrors {
            let comm = runOptions.communicator()
            defer { (comm as? MPICommunicator)?.finalize() }
            runOptions.applyThreads()
            let ranks = comm.worldSize
            let perRank = pairsPerStep / (ranks * gradientAccumulationSteps)
            guard perRank >= 1, perRank * ranks * gradientAccumulationSteps == pairsPerStep else {
                throw DPOError("--pairs-per-step \(pairsPerStep) is not a multiple of ranks (\(ranks)) × --gradient-accumulation-steps (\(gradientAccumulationSteps))")
            }
            let work = workDir ?? NSTemporaryDirectory() + "dpo-dist-bench-\(getuid())"
            var args = TrainingArguments()
            args.perDeviceTrainBatchSize = perRank
            args.perDeviceEvalBatchSize = 8
            args.gradientAccumulationSteps = gradientAccumulationSteps
            args.learningRate = 1e-6
            args.maxLength = 512
            args.shuffle = false
            args.precomputeRefLogProbs = precomputeRefLogProbs
            args.bf16 = bf16
            args.sharePrompt = sharePrompt
            args.gradientCheckpointing = gradientCheckpointing
            args.outputDir = work + "/run"
            if bf16, let reason = OneDNNBF16.unavailableReason() { throw DPOError("--bf16: \(reason)") }
            var workload: TrainingBenchmark.Workload
            let config = KernelBenchmark.smolLM2_135M(layers: layers)
            if let model {
                args.model = model
                args.trainFile = trainFile ?? ""
                workload = TrainingBenchmark.Workload(args: args, pairs: nil, description: "\(model) on \(trainFile ?? "synthetic pairs")")
                if trainFile == nil {
                    let loaded = try ModelConfig.load(path: model + "/config.json").0
                    workload.pairs = TrainingBenchmark.syntheticPairs(count: pairs, promptTokens: promptTokens,
                                                                      completionTokens: completionTokens, vocab: loaded.vocabSize, seed: 5)
                }
            } else {
                args.model = work + "/model-\(layers)-layers"
                args.trainFile = "(synthetic pairs)"
                if comm.isMain {
                    if !FileManager.default.fileExists(atPath: args.model + "/model.safetensors") {
                        Console.note("writing the synthetic model to \(args.model)…\n")
                        try TrainingBenchmark.writeSyntheticModel(config: config, to: args.model, seed: 1)
                    }
                }
                comm.barrier()
                workload = TrainingBenchmark.Workload(
                    args: args,
                    pairs: TrainingBenchmark.syntheticPairs(count: pairs, promptTokens: promptTokens, completionTokens: completionTokens,
                                                            vocab: config.vocabSize, seed: 5),
                    description: "SmolLM2-135M shape (\(layers) layers), random weights and \(pairs) random pairs (prompts ~\(promptTokens), completions ~\(completionTokens) tokens)")
            }
            // A cache from an earlier run would skip the precompute this bench times.
            if comm.isMain, FileManager.default.fileExists(atPath: args.outputDir) { try FileManager.default.removeItem(atPath: args.outputDir) }
            try FileManager.default.createDirectory(atPath: args.outputDir, withIntermediateDirectories: true)
            comm.barrier()
            let r = try TrainingBenchmark.run(workload, warmup: warmup, steps: steps, comm: comm, parallel: runOptions.parallel) { line in
                if comm.isMain { Console.note(line + "\n") }
            }
            if comm.isMain {
                print(Self.report(r, workload: workload, ranks: ranks, threads: runOptions.effectiveThreads,
                                  accumulation: gradientAccumulationSteps, parallel: runOptions.parallel,
                                  allRanksOnOneHost: comm.allRanksOnOneHost))
            }
        }
    }

    /// What travels between the ranks in a step, with the ring's bytes per rank and the median time.
    static func reductionLine(parameters: Int, ranks: Int, parallel: ParallelOptions, seconds: Double, widened: Bool) -> String {
        if ranks == 1 { return "gradient reduction: none (one rank)" }
        let p = Double(ranks), gradient = Double(parameters * parallel.reduceDtype.bytes) / 1e6
        let dtype = parallel.reduceDtype.rawValue as NSString
        // In a ring each rank sends and receives (p-1)/p of a buffer it gathers or reduce-scatters; the
        // widened reduce-scatter carries 1/p of the fp32 values on its first hop and (p-2)/p as fp64 after.
        let fp32 = Double(parameters * 4) / 1e6, gathered = (p - 1) / p * fp32, widenedScatter = fp32 / p + 2 * fp32 * (p - 2) / p
        if parallel.zeroStage >= 1 {
            if widened {
                return String(format: "gradient reduction (ZeRO-1): fp32 reduce-scatter summed in fp64 on a ring (%.1f MB of fp32 gradient; each rank sends and receives %.1f MB) and float32 all-gather of the updated parameters (%.1f MB each), %.3f s median",
                              fp32, widenedScatter, gathered, seconds)
            }
            return String(format: "gradient reduction (ZeRO-1): %@ reduce-scatter of %.1f MB and float32 all-gather of the updated parameters, %.1f MB, per step (ring: each rank sends and receives (p-1)/p of each, %.1f + %.1f MB), %.3f s median",
                          dtype, gradient, fp32, (p - 1) / p * gradient, gathered, seconds)
        }
        if widened {
            return String(format: "gradient reduction: float64 sums of fp32 buckets (a ring whose first hop and gather carry fp32, fp64 partial sums between), %.1f MB of fp32 gradient per step; each rank sends and receives %.1f MB, %.3f s median",
                          fp32, widenedScatter + gathered, seconds)
        }
        return String(format: "gradient reduction: %@ all-reduce of %.1f MB per step (ring: each rank sends and receives 2(p-1)/p of it, %.1f MB), %.3f s median",
                      dtype, gradient, 2 * (p - 1) / p * gradient, seconds)
    }

    static func report(_ r: TrainingBenchmark.Result, workload: TrainingBenchmark.Workload, ranks: Int, threads: Int, accumulation: Int,
                       parallel: ParallelOptions, allRanksOnOneHost: Bool) -> String {
        let host = ProcessInfo.processInfo
        let cpu = BLASCore.cpuName()
        let m = r.median
        func part(_ name: String, _ s: Double) -> String {
            "  " + name.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%8.3f s  %5.1f%%", s, m.total > 0 ? 100 * s / m.total : 0)
        }
        var lines = [
            "machine: \(host.hostName), \(cpu), \(host.activeProcessorCount) cores; \(ranks) rank\(ranks == 1 ? "" : "s") × \(threads) thread\(threads == 1 ? "" : "s")",
            "products: \(r.backend)",
            "workload: \(workload.description); \(r.parameters) parameters",
            "step: \(r.pairsPerStep) pairs (\(workload.args.perDeviceTrainBatchSize) per micro-batch × \(accumulation) × \(ranks) ranks), reference \(workload.args.precomputeRefLogProbs ? "precomputed" : "run each step"), prompt sharing \(workload.args.sharePrompt ? "on" : "off"), gradient checkpointing \(workload.args.gradientCheckpointing ? "on (backward includes the recomputed forward)" : "off")",
        ]
        if let p = r.precomputeSeconds {
            lines.append(String(format: "precompute: %d pairs in %.2f s, %.2f pairs/s", r.precomputedPairs, p, Double(r.precomputedPairs) / p))
        }
        lines += [
            String(format: "median of %d steps: %.3f s/step, %.2f pairs/s, %.0f tokens/s", r.steps.count, m.total,
                   Double(r.pairsPerStep) / m.total, r.tokensPerStep / m.total),
            part("forward", m.forward), part("backward", m.backward), part("reference", m.reference),
            part("communication", m.communication), part("optimizer", m.optimizer), part("other", m.other),
            reductionLine(parameters: r.parameters, ranks: ranks, parallel: parallel, seconds: m.communication,
                          widened: parallel.widensFP32Gradients(microBatchesPerRank: accumulation, allRanksOnOneHost: allRanksOnOneHost)),
            String(format: "model FLOPs per step: %.3f TFLOP; %.1f GFLOP/s = %.0f%% of the GEMM rate (the median over steps of each step's rate against the rate its products reached on %@ right after it, all ranks at once: %.1f GFLOP/s median, %.1f–%.1f over the steps)",
                   r.flopsPerStep / 1e12, r.flopsPerStep / m.total / 1e9, 100 * TrainingBenchmark.median(r.flopShares),
                   r.gemmShapes as NSString, TrainingBenchmark.median(r.gemmRates), r.gemmRates.min() ?? 0, r.gemmRates.max() ?? 0),
            "page faults inside the timed steps: \(r.stepPageFaults) (all ranks; 0 means no step touched memory it had not touched before)",
            "peak RSS per rank: " + r.peakRSS.enumerated().map { String(format: "rank %d %.2f GB", $0.offset, $0.element / 1e9) }.joined(separator: ", "),
        ]
        return lines.joined(separator: "\n")
    }
}
