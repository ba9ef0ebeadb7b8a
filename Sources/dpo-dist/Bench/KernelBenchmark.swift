import DPOKernels
import DPOModel
import DPOSupport
import Foundation

/// Times the model's forward and backward passes on a random model of a given shape, next to the
/// plain cblas_sgemm rate measured on the same machine in the same run.
///
/// FLOPs counted are the useful ones: 2·m·n·k per product, causal attention over the lower
/// triangle only, backward = 2 × forward. Work the engine repeats on purpose (attention
/// probabilities and head logits recomputed in backward, the masked half of diagonal blocks)
/// is not counted, so the rate is what a user gets per model FLOP.
public struct KernelBenchmark {
    public struct Result {
        public var forwardSeconds: Double
        public var backwardSeconds: Double
        public var forwardFLOPs: Double
        public var backwardFLOPs: Double
        public var sgemmGFLOPS: Double
        public var sgemmShape: (Int, Int, Int)
        public var forwardGFLOPS: Double { forwardFLOPs / forwardSeconds / 1e9 }
        public var backwardGFLOPS: Double { backwardFLOPs / backwardSeconds / 1e9 }
        public var totalGFLOPS: Double { (forwardFLOPs + backwardFLOPs) / (forwardSeconds + backwardSeconds) / 1e9 }
        public var shareOfSgemm: Double { totalGFLOPS / sgemmGFLOPS }
    }

    public let config: ModelConfig
    public let tokens: Int
    public let sequences: Int

    public init(config: ModelConfig, tokens: Int, sequences: Int = 1) {
        self.config = config
        self.tokens = tokens
        self.sequences = sequences
    }

    /// SmolLM2-135M: hidden 576, 30 layers, 9 heads, 3 KV heads, intermediate 1536, vocab 49152, tied;
    /// fewer layers for a quick look (FLOPs and rates stay comparable).
    public static func smolLM2_135M(layers: Int = 30) -> ModelConfig {
        ModelConfig.llama(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: layers, numHeads: 9,
                          numKVHeads: 3, tied: true, ropeTheta: 100000, maxPositions: 8192)
    }

    /// Useful FLOPs of one forward pass over the batch with every next token scored (each layer's
    /// attention over the keys its window lets a query see: the lower triangle without one).
    public func forwardFLOPs(lengths: [Int]) -> Double {
        let layers = Double(config.numLayers)
        let pairs = config.spec.layerWindows.reduce(0.0) { sum, window in
            sum + lengths.reduce(0.0) { total, L in
                guard let W = window, W < L else { return total + Double(L) * Double(L + 1) / 2 }
                return total + Double(W) * Double(W + 1) / 2 + Double(L - W) * Double(W)
            }
        } / layers
        return Self.forwardFLOPs(config: config, tokens: Double(lengths.reduce(0, +)), attentionPairs: pairs,
                                 scored: Double(lengths.reduce(0) { $0 + max($1 - 1, 0) }))
    }

    /// Useful FLOPs of one forward pass: `tokens` rows through every layer's linear products,
    /// `attentionPairs` (query, key) pairs a query attends to, `scored` rows through the LM head.
    public static func forwardFLOPs(config c: ModelConfig, tokens: Double, attentionPairs: Double, scored: Double) -> Double {
        let C = Double(c.hiddenSize), Q = Double(c.qDim), KV = Double(c.kvDim), I = Double(c.intermediateSize)
        let linear = 2 * tokens * (C * Q + 2 * C * KV + Q * C + 3 * C * I)
        let attention = 2 * 2 * attentionPairs * Double(c.headDim) * Double(c.numHeads)
        return Double(c.numLayers) * (linear + attention) + 2 * scored * C * Double(c.vocabSize)
    }

    /// cblas_sgemm on an (m × k)·(k × n) product: best of `repeats`.
    public static func sgemmRate(m: Int, n: Int, k: Int, repeats: Int = 5, matmul: any MatmulBackend = OpenBLASFP32()) -> Double {
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
        var rng = SplitMix64(seed: 7)
        for i in 0..<a.count { a[i] = rng.nextGaussian() }
        for i in 0..<b.count { b[i] = rng.nextGaussian() }
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            matmul.gemm(transA: false, transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: k, beta: 0, c: c.pointer, ldc: n)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * Double(m) * Double(n) * Double(k) / best / 1e9
    }

    public func run(repeats: Int = 2, progress: (String) -> Void = { _ in }) -> Result {
        let model = Transformer(config: config)
        model.initializeRandom(seed: 1)
        model.enableGradients()
        var rng = SplitMix64(seed: 2)
        var batch = TokenBatch()
        let base = tokens / sequences
        let lengths = (0..<sequences).map { $0 < sequences - 1 ? base : tokens - base * (sequences - 1) }
        for length in lengths {
            batch.append((0..<length).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }, scoreFrom: 1)
        }
        let dlogp = [Float](repeating: -1 / Float(batch.scoredCount), count: batch.scoredCount)
        model.reserve(tokens: batch.tokenCount, longestSequence: batch.longestSequence, scoredRows: batch.scoredCount)

        progress("sgemm reference rate…")
        // The MLP's up-projection shape at this token count: the product the model does most.
        let shape = (tokens, config.intermediateSize, config.hiddenSize)
        let sgemm = Self.sgemmRate(m: shape.0, n: shape.1, k: shape.2)

        var forward = Double.infinity, backward = Double.infinity
        for r in 0...repeats {  // the first round warms caches and page-faults the buffers in
            let t0 = DispatchTime.now().uptimeNanoseconds
            model.forward(batch)
            let t1 = DispatchTime.now().uptimeNanoseconds
            dlogp.withUnsafeBufferPointer { model.backward(batch, dlogp: $0.baseAddress!) }
            let t2 = DispatchTime.now().uptimeNanoseconds
            if r > 0 {
                forward = min(forward, Double(t1 - t0) / 1e9)
                backward = min(backward, Double(t2 - t1) / 1e9)
            }
            progress(String(format: "round %d: forward %.3f s, backward %.3f s", r, Double(t1 - t0) / 1e9, Double(t2 - t1) / 1e9))
        }
        let f = forwardFLOPs(lengths: lengths)
        return Result(forwardSeconds: forward, backwardSeconds: backward, forwardFLOPs: f, backwardFLOPs: 2 * f,
                      sgemmGFLOPS: sgemm, sgemmShape: shape)
    }
}
