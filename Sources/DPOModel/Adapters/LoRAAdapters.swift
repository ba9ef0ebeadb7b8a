import DPOKernels
import DPOSupport
import Foundation

/// PEFT's LoRA settings (`LoraConfig`, as TRL's `get_peft_config` makes it: bias "none", no DoRA,
/// no modules_to_save). Scaling is alpha / r, or alpha / √r with rsLoRA.
public struct LoRASettings: Equatable, Sendable {
    public var rank: Int
    public var alpha: Double
    /// Module names as PEFT matches them (a module whose path equals a name or ends in "." + name),
    /// or ["all-linear"]: every linear of the decoder layers (PEFT leaves out the LM head).
    public var targets: [String]
    public var rslora: Bool

    public init(rank: Int, alpha: Double, targets: [String], rslora: Bool) {
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.rslora = rslora
    }

    public var scaling: Float { Float(rslora ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }

    /// PEFT's `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING` for the model types dpo-dist
    /// reads: the targets when none are given. PEFT has none for smollm3 (and refuses to guess).
    public static let peftDefaultTargets: [String: [String]] = [
        "llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"], "qwen3": ["q_proj", "v_proj"],
        "mistral": ["q_proj", "v_proj"], "gemma": ["q_proj", "v_proj"], "gemma2": ["q_proj", "v_proj"],
        "gemma3_text": ["q_proj", "v_proj"],
    ]
}

/// LoRA adapters beside a frozen base (PEFT's `lora.Linear`): for each adapted linear W,
/// out = W·x + scaling · B·(A·x), A (r, in) and B (out, r). The adapters are their own
/// `ParameterSet`, which the optimizer, gradient sync and checkpoints take; the base keeps no
/// gradient and runs no weight-gradient product. Tensors are named as PEFT saves them
/// (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`), layer by layer in forward
/// order, A before B, so each layer's adapters are one contiguous range (`layerRanges`).
///
/// Numeric semantics: fp32, as the base; the product by `scaling` is folded into the B products
/// (alpha of the GEMM), which rounds differently from PEFT's `B(A(x)) * scaling` only in the last bit.
public final class LoRAAdapters {
    public let settings: LoRASettings
    public let parameters: ParameterSet
    /// Each decoder layer's range in `parameters`.
    public let layerRanges: [Range<Int>]
    /// The adapted modules' short names (q_proj, v_proj, ...), sorted: adapter_config.json's target_modules.
    public let targetModules: [String]
    public let scaling: Float

    /// One adapted linear: offsets of A and B in `parameters` (for a part of a fused tensor, the
    /// fused adapter's A and the part's first row of its B), its shape, and its slot of kept A·x.
    struct Slot {
        let a: Int, b: Int
        let inFeatures: Int, outFeatures: Int
        let index: Int
    }
    /// By the base linear's weight offset (unique per linear).
    private let slots: [Int: Slot]
    /// A·x of every slot (slots × tokens × r), kept for backward; and d(A·x) for one slot (tokens × r).
    private var hidden = FloatBuffer(count: 0)
    private var dHidden = FloatBuffer(count: 0)
    private var tokens = 0

    /// Adapters for the linears of `layout` that `settings.targets` names, zero-filled (see
    /// `initializeAsPEFT`). A name that matches no linear of the decoder layers is refused, as PEFT does.
    public init(layout: ParameterLayout, config: ModelConfig, settings: LoRASettings) throws {
        guard settings.rank >= 1 else { throw DPOError("lora_r must be at least 1, got \(settings.rank)") }
        self.settings = settings
        scaling = settings.scaling
        let allLinear = settings.targets == ["all-linear"]
        // The tensor holding each linear: its own, or for Phi-3's fused projections the one tensor
        // whose row slices q, k and v (gate and up) are.
        let byStart = layout.tensors.sorted { $0.offset < $1.offset }
        func tensor(holding offset: Int) -> NamedTensor {
            byStart.last { $0.offset <= offset }!
        }
        var tensors: [NamedTensor] = [], slots: [Int: Slot] = [:], ranges: [Range<Int>] = []
        var matched = Set<String>(), modules = Set<String>(), linearNames = Set<String>()
        var offset = 0
        let r = settings.rank
        for layer in layout.layers {
            let start = offset
            // A fused tensor gets one adapter, as PEFT gives its one nn.Linear: one A, and one B whose
            // rows span the parts; each part reads A and its rows of B.
            var made: [String: (a: Int, b: Int)] = [:]
            for w in layer.linears {
                let t = tensor(holding: w.weight)
                let path = String(t.name.dropLast(".weight".count))
                let short = String(path.split(separator: ".").last!)
                linearNames.insert(short)
                let target = allLinear ? "all-linear" : settings.targets.first { path == $0 || path.hasSuffix("." + $0) }
                guard let target else { continue }
                matched.insert(target)
                modules.insert(short)
                if made[path] == nil {
                    let a = NamedTensor(name: "base_model.model.\(path).lora_A.weight", offset: offset, shape: [r, w.inFeatures])
                    offset += a.count
                    let b = NamedTensor(name: "base_model.model.\(path).lora_B.weight", offset: offset, shape: [t.shape[0], r])
                    offset += b.count
                    tensors += [a, b]
                    made[path] = (a.offset, b.offset)
                }
                let firstRow = (w.weight - t.offset) / w.inFeatures
                slots[w.weight] = Slot(a: made[path]!.a, b: made[path]!.b + firstRow * r, inFeatures: w.inFeatures,
                                       outFeatures: w.outFeatures, index: slots.count)
            }
            ranges.append(start..<offset)
        }
        let unmatched = settings.targets.filter { !matched.contains($0) }
        guard unmatched.isEmpty, !tensors.isEmpty else {
            throw DPOError("lora_target_modules: \(unmatched.isEmpty ? "nothing" : unmatched.map { "\"\($0)\"" }.joined(separator: ", ")) matches no linear layer of the decoder (\(config.architecture.className) has \(linearNames.sorted().joined(separator: ", ")); or all-linear); dpo-dist adapts those linears, not the embedding or the LM head")
        }
        self.slots = slots
        layerRanges = ranges
        targetModules = modules.sorted()
        parameters = ParameterSet(tensors: tensors)
    }

    /// PEFT's initialisation (`init_lora_weights=True`): A Kaiming-uniform with a = √5, which is
    /// uniform in ±1/√in, and B zero, so the adapted model starts as the base. From our seeded RNG,
    /// so the draws are not torch's.
    public func initializeAsPEFT(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let p = parameters.values.pointer
        for t in parameters.tensors {
            if t.name.hasSuffix("lora_A.weight") {
                let bound = 1 / Double(t.shape[1]).squareRoot()
                for i in 0..<t.count { p[t.offset + i] = Float((2 * rng.nextUniform() - 1) * bound) }
            } else {
                (p + t.offset).update(repeating: 0, count: t.count)
            }
        }
    }

    /// Adds each adapter into its base weight, W += scaling · B·A (PEFT's `merge_and_unload`), in
    /// `values`, a buffer in the base's layout: the merged model computes what base and adapters do.
    public func merge(into values: FloatBuffer, matmul: any MatmulBackend = OpenBLASFP32()) {
        let P = parameters.values.pointer, r = settings.rank
        for (weight, s) in slots {
            matmul.gemm(transA: false, transB: false, m: s.outFeatures, n: s.inFeatures, k: r, alpha: scaling,
                        a: P + s.b, lda: r, b: P + s.a, ldb: s.inFeatures, beta: 1, c: values.pointer + weight, ldc: s.inFeatures)
        }
    }

    /// Floats of kept A·x and its gradient scratch for a batch of `tokens`.
    public func activationFloats(tokens: Int) -> Int { (slots.count + 1) * tokens * settings.rank }

    /// Storage for a batch of `tokens` tokens; allocates only when it grows.
    func reserve(tokens: Int) {
        guard tokens > self.tokens else { return }
        self.tokens = tokens
        hidden = FloatBuffer(count: slots.count * tokens * settings.rank)
        dHidden = FloatBuffer(count: tokens * settings.rank)
    }

    /// out += scaling · (inp · Aᵀ) · Bᵀ for an adapted linear; nothing for another. A·x is kept for backward.
    func forward(_ w: LinearView, out: FloatPtr, inp: ConstFloatPtr, rows: Int, matmul: any MatmulBackend) {
        guard let s = slots[w.weight] else { return }
        let r = settings.rank, P = parameters.values.pointer, u = hidden.pointer + s.index * tokens * r
        matmul.gemm(transA: false, transB: true, m: rows, n: r, k: s.inFeatures, a: inp, lda: s.inFeatures,
                    b: P + s.a, ldb: s.inFeatures, beta: 0, c: u, ldc: r)
        matmul.gemm(transA: false, transB: true, m: rows, n: s.outFeatures, k: r, alpha: scaling, a: u, lda: r,
                    b: P + s.b, ldb: r, beta: 1, c: out, ldc: s.outFeatures)
    }

    /// The mirror of `forward`, after the base linear's backward has written dinp: dB += scaling ·
    /// doutᵀ · u, du = scaling · dout · B, dA += duᵀ · inp, dinp += du · A. Frozen adapters (no
    /// gradients) only add their share of dinp.
    func backward(_ w: LinearView, dinp: FloatPtr, dout: ConstFloatPtr, inp: ConstFloatPtr, rows: Int,
                  matmul: any MatmulBackend) {
        guard let s = slots[w.weight] else { return }
        let r = settings.rank, P = parameters.values.pointer, G = parameters.gradients?.pointer
        let u = hidden.pointer + s.index * tokens * r, du = dHidden.pointer
        if let G {
            matmul.gemm(transA: true, transB: false, m: s.outFeatures, n: r, k: rows, alpha: scaling, a: dout,
                        lda: s.outFeatures, b: u, ldb: r, beta: 1, c: G + s.b, ldc: r)
        }
        matmul.gemm(transA: false, transB: false, m: rows, n: r, k: s.outFeatures, alpha: scaling, a: dout,
                    lda: s.outFeatures, b: P + s.b, ldb: r, beta: 0, c: du, ldc: r)
        if let G {
            matmul.gemm(transA: true, transB: false, m: r, n: s.inFeatures, k: rows, a: du, lda: r, b: inp,
                        ldb: s.inFeatures, beta: 1, c: G + s.a, ldc: s.inFeatures)
        }
        matmul.gemm(transA: false, transB: false, m: rows, n: s.inFeatures, k: r, a: du, lda: r, b: P + s.a,
                    ldb: s.inFeatures, beta: 1, c: dinp, ldc: s.inFeatures)
    }
}
