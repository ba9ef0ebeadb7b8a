import Foundation

/// A tensor of a flat buffer: its Hugging Face name, where it starts and its shape.
public struct NamedTensor: Sendable, Equatable {
    public let name: String
    public let offset: Int
    public let shape: [Int]
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }

    public init(name: String, offset: Int, shape: [Int]) {
        self.name = name
        self.offset = offset
        self.shape = shape
    }
}

/// An nn.Linear inside a flat buffer: the weight (outFeatures, inFeatures) and an optional bias
/// (outFeatures), as offsets.
public struct LinearView: Sendable {
    public let weight: Int
    public let bias: Int?
    public let inFeatures: Int
    public let outFeatures: Int
}

/// An RMSNorm's weight (channels) inside a flat buffer.
public struct NormView: Sendable {
    public let weight: Int
    public let channels: Int
}

/// One decoder layer's parameters, in forward order.
public struct LayerViews: Sendable {
    public var inputNorm: NormView
    public var q: LinearView
    public var k: LinearView
    public var v: LinearView
    public var o: LinearView
    /// RMSNorms on the projected q and k (`DecoderSpec.qkNorm`): over head_dim or the whole projection.
    public var qNorm: NormView?
    public var kNorm: NormView?
    public var postNorm: NormView
    /// With `NormPlacement.aroundSublayer` (Gemma 3), the norms on attention's and the MLP's outputs.
    public var attentionOutputNorm: NormView?
    public var mlpOutputNorm: NormView?
    public var gate: LinearView
    public var up: LinearView
    public var down: LinearView
    /// The layer's range in the flat buffer: its tensors are contiguous.
    public var range: Range<Int>
}

/// The table of named views into the one flat parameter buffer (and the gradient buffer, which has
/// the same layout). Names are the architecture's Hugging Face tensor names, so loading and saving
/// is a walk over `tensors`.
///
/// Order: embed_tokens, then each layer's tensors in forward order, then the final norm and the
/// untied head. Layers are contiguous, so "layer l's gradients" is one range of the buffer.
public struct ParameterLayout: Sendable {
    public let tensors: [NamedTensor]
    public let count: Int
    public let embed: Int               // (V, C)
    public let layers: [LayerViews]
    public let finalNorm: NormView      // (C)
    /// The LM head weight (V, C): the embedding itself when tied.
    public let head: Int
    private let index: [String: Int]

    public init(config c: ModelConfig) {
        var tensors: [NamedTensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let t = NamedTensor(name: name, offset: offset, shape: shape)
            tensors.append(t)
            offset += t.count
            return t.offset
        }
        func linear(_ name: String, in inFeatures: Int, out outFeatures: Int, bias: Bool) -> LinearView {
            let weight = add(name + ".weight", [outFeatures, inFeatures])
            return LinearView(weight: weight, bias: bias ? add(name + ".bias", [outFeatures]) : nil,
                              inFeatures: inFeatures, outFeatures: outFeatures)
        }
        func norm(_ name: String, channels: Int? = nil) -> NormView {
            let n = channels ?? c.hiddenSize
            return NormView(weight: add(name, [n]), channels: n)
        }
        /// Linears stored as one tensor (rows of the first, then the next, ...): views into it.
        func fused(_ name: String, in inFeatures: Int, outs: [Int]) -> [LinearView] {
            var weight = add(name + ".weight", [outs.reduce(0, +), inFeatures])
            return outs.map { out in
                defer { weight += out * inFeatures }
                return LinearView(weight: weight, bias: nil, inFeatures: inFeatures, outFeatures: out)
            }
        }

        let names = c.architecture.tensorNames, spec = c.spec
        let C = c.hiddenSize, I = c.intermediateSize
        embed = add(names.embed, [c.vocabSize, C])
        layers = (0..<c.numLayers).map { l in
            let p = names.layerPrefix + "\(l)."
            let start = offset
            let inputNorm = norm(p + names.inputNorm + ".weight")
            let q: LinearView, k: LinearView, v: LinearView
            if spec.fusedProjections {
                precondition(!spec.qkvBias, "fused q/k/v projections carry no bias")
                let qkv = fused(p + names.q, in: C, outs: [c.qDim, c.kvDim, c.kvDim])
                (q, k, v) = (qkv[0], qkv[1], qkv[2])
            } else {
                q = linear(p + names.q, in: C, out: c.qDim, bias: spec.qkvBias)
                k = linear(p + names.k, in: C, out: c.kvDim, bias: spec.qkvBias)
                v = linear(p + names.v, in: C, out: c.kvDim, bias: spec.qkvBias)
            }
            let o = linear(p + names.o, in: c.qDim, out: C, bias: spec.oBias)
            var qNorm: NormView?, kNorm: NormView?
            switch spec.qkNorm {
            case .none: break
            case .perHead:
                qNorm = norm(p + names.qNorm + ".weight", channels: c.headDim)
                kNorm = norm(p + names.kNorm + ".weight", channels: c.headDim)
            case .wholeProjection:
                qNorm = norm(p + names.qNorm + ".weight", channels: c.qDim)
                kNorm = norm(p + names.kNorm + ".weight", channels: c.kvDim)
            }
            let around = spec.normPlacement == .aroundSublayer
            let attentionOutputNorm = around ? norm(p + names.attentionOutputNorm + ".weight") : nil
            let postNorm = norm(p + names.postNorm + ".weight")
            let gate: LinearView, up: LinearView
            if spec.fusedProjections {
                precondition(!spec.mlpBias, "fused gate/up projections carry no bias")
                let gateUp = fused(p + names.gate, in: C, outs: [I, I])
                (gate, up) = (gateUp[0], gateUp[1])
            } else {
                gate = linear(p + names.gate, in: C, out: I, bias: spec.mlpBias)
                up = linear(p + names.up, in: C, out: I, bias: spec.mlpBias)
            }
            let down = linear(p + names.down, in: I, out: C, bias: spec.mlpBias)
            let mlpOutputNorm = around ? norm(p + names.mlpOutputNorm + ".weight") : nil
            return LayerViews(inputNorm: inputNorm, q: q, k: k, v: v, o: o, qNorm: qNorm, kNorm: kNorm, postNorm: postNorm,
                              attentionOutputNorm: attentionOutputNorm, mlpOutputNorm: mlpOutputNorm,
                              gate: gate, up: up, down: down, range: start..<offset)
        }
        finalNorm = norm(names.finalNorm)
        head = c.tieWordEmbeddings ? embed : add(names.head, [c.vocabSize, C])
        self.tensors = tensors
        self.count = offset
        self.index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    public func tensor(named name: String) -> NamedTensor? { index[name].map { tensors[$0] } }

    /// Norm weights start at 1 (as nn.RMSNorm; at 0 where the norm scales by 1 + weight); they are the tensors of rank 1 named `*norm.weight`.
    public func isNormWeight(_ t: NamedTensor) -> Bool { t.shape.count == 1 && t.name.hasSuffix("norm.weight") }
    public func isBias(_ t: NamedTensor) -> Bool { t.name.hasSuffix(".bias") }
}
