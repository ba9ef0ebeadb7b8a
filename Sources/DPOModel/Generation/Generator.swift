import DPOKernels
import DPOSupport
import Foundation

/// Greedy or sampled continuation of a prompt. Each new token re-runs the whole sequence (no KV
/// cache): enough for the side-by-side reports of a few prompts this is used for.
public struct GenerationSettings: Sendable {
    public var maxNewTokens: Int
    /// 0: greedy (argmax, first maximum on ties).
    public var temperature: Double
    /// Nucleus sampling: the smallest set of tokens whose probability reaches top_p.
    public var topP: Double
    public var seed: UInt64

    public init(maxNewTokens: Int = 64, temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0) {
        self.maxNewTokens = maxNewTokens; self.temperature = temperature; self.topP = topP; self.seed = seed
    }
}

public enum Generator {
    public static func generate(model: Transformer, prompt: [Int], stopTokens: Set<Int>,
                                settings: GenerationSettings) -> [Int] {
        precondition(!prompt.isEmpty, "generation needs at least one prompt token")
        var rng = SplitMix64(seed: settings.seed)
        var ids = prompt
        var generated: [Int] = []
        var batch = TokenBatch()
        let V = model.config.vocabSize
        let logits = FloatBuffer(count: V, zeroed: false)
        for step in 0..<settings.maxNewTokens {
            batch.removeAll()
            batch.appendForGeneration(ids)
            model.forward(batch, weightsUnchanged: step > 0)
            model.scoredRowLogits(first: 0, count: 1, into: logits.pointer)
            let next = settings.temperature <= 0 ? argmax(logits.pointer, V)
                : sample(logits.pointer, V, temperature: settings.temperature, topP: settings.topP, rng: &rng)
            generated.append(next)
            if stopTokens.contains(next) { break }
            ids.append(next)
        }
        return generated
    }

    static func argmax(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        for i in 1..<n where p[i] > p[best] { best = i }
        return best
    }

    static func sample(_ logits: UnsafePointer<Float>, _ n: Int, temperature: Double, topP: Double,
                       rng: inout SplitMix64) -> Int {
        var m = -Double.infinity
        for i in 0..<n { m = max(m, Double(logits[i])) }
        var probs = (0..<n).map { exp((Double(logits[$0]) - m) / temperature) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        var order = Array(0..<n)
        if topP < 1 {
            order.sort { probs[$0] > probs[$1] }
            var mass = 0.0, keep = 0
            while keep < n, mass < topP { mass += probs[order[keep]]; keep += 1 }
            order = Array(order.prefix(max(keep, 1)))
        }
        let mass = order.reduce(0.0) { $0 + probs[$1] }
        var u = rng.nextUniform() * mass
        for i in order {
            u -= probs[i]
            if u <= 0 { return i }
        }
        return order.last!
    }
}
