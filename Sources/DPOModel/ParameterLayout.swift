

/// The table of named views into the one flat parameter buffer (and the gradient buffer, which has the
/// same layout). Names are the Hugging Face tensor names, so loading and saving is a walk over this table.
///
/// Order: embed_tokens, then each layer's tensors in forward order, then the final norm and the
/// untied head. Layers are contiguous, so "layer l's gradients" is one range of the buffer.
public struct ParameterLayout: Sendable {
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let offset: Int
        public let shape: [Int]
        public var count: Int { shape.reduce(1, *) }
    }

    /// Offsets of one decoder layer's tensors. A bias that the architecture lacks is nil.
    public struct Layer: Sendable {
        public var inputNorm = 0        // (C)
        public var q = 0                // (Hq*D, C)
        public var qBias: Int?          // (Hq*D)
        public var k = 0                // (Hkv*D, C)
        public var kBias: Int?
        public var v = 0                // (Hkv*D, C)
        public var vBias: Int?
        public var o = 0                // (C, Hq*D)
        public var oBias: Int?          // (C)
        public var postNorm = 0         // (C)
        public var gate = 0             // (I, C)
        public var gateBias: Int?
        public var up = 0               // (I, C)
        public var upBias: Int?
        public var down = 0             // (C, I)
        public var downBias: Int?
        /// The layer's range in the flat buffer.
        public var range: Range<Int> = 0..<0
    }

    public let tensors: [Tensor]
    public let count: Int
    public let embed: Int               // (V, C)
    public let layers: [Layer]
    public let finalNorm: Int           // (C)
    /// The LM head weight (V, C): the embedding itself when tied.
    public let head: Int
    private let index: [String: Int]

    public init(config c: ModelConfig) {
        var tensors: [Tensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let t = Tensor(name: name, offset: offset, shape: shape)
            tensors.append(t)
            offset += t.count
            return t.offset
        }
        let C = c.hiddenSize, I = c.intermediateSize
        embed = add("model.embed_tokens.weight", [c.vocabSize, C])
        var layers: [Layer] = []
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            var L = Layer()
            let start = offset
            L.inputNorm = add(p + "input_layernorm.weight", [C])
            L.q = add(p + "self_attn.q_proj.weight", [c.qDim, C])
            if c.qkvBias { L.qBias = add(p + "self_attn.q_proj.bias", [c.qDim]) }
            L.k = add(p + "self_attn.k_proj.weight", [c.kvDim, C])
            if c.qkvBias { L.kBias = add(p + "self_attn.k_proj.bias", [c.kvDim]) }
            L.v = add(p + "self_attn.v_proj.weight", [c.kvDim, C])
            if c.qkvBias { L.vBias = add(p + "self_attn.v_proj.bias", [c.kvDim]) }
            L.o = add(p + "self_attn.o_proj.weight", [C, c.qDim])
            if c.oBias { L.oBias = add(p + "self_attn.o_proj.bias", [C]) }
            L.postNorm = add(p + "post_attention_layernorm.weight", [C])
            L.gate = add(p + "mlp.gate_proj.weight", [I, C])
            if c.mlpBias { L.gateBias = add(p + "mlp.gate_proj.bias", [I]) }
            L.up = add(p + "mlp.up_proj.weight", [I, C])
            if c.mlpBias { L.upBias = add(p + "mlp.up_proj.bias", [I]) }
            L.down = add(p + "mlp.down_proj.weight", [C, I])
            if c.mlpBias { L.downBias = add(p + "mlp.down_proj.bias", [C]) }
            L.range = start..<offset
            layers.append(L)
        }
        finalNorm = add("model.norm.weight", [C])
        head = c.tieWordEmbeddings ? embed : add("lm_head.weight", [c.vocabSize, C])
        self.layers = layers
        self.tensors = tensors
        self.count = offset
        self.index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    public func tensor(named name: String) -> Tensor? { index[name].map { tensors[$0] } }

    /// Norm weights start at 1 (as nn.RMSNorm); they are the tensors of rank 1 named `*norm.weight`.
    public func isNormWeight(_ t: Tensor) -> Bool { t.shape.count == 1 && t.name.hasSuffix("norm.weight") }
    public func isBias(_ t: Tensor) -> Bool { t.name.hasSuffix(".bias") }
}
