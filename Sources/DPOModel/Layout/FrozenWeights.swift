import DPOKernels
import DPOSupport
import Foundation

/// The weights of a model's decoder linears kept in bf16, as the safetensors files hold them, in
/// the files' own memory mappings: for a model that is never updated (the frozen base of a LoRA
/// run, a reference model, a model that is only scored). Their pages belong to the page cache, so
/// every rank of a node that maps the same files shares one copy, and a 3B model's linears take
/// 2 bytes a weight instead of an fp32 copy's 4. Each product widens its weight into a scratch
/// buffer first: widening is exact, so the product has the bits it would have on an fp32 copy.
///
/// The tensors kept here are not in the model's flat fp32 buffer: their ranges there stay unbacked
/// (`FloatBuffer(pagesOnFirstWrite:)`) and are never read.
public final class FrozenWeights {
    /// The bf16 bits of each frozen linear, by its `LinearView.weight` offset in the layout (a
    /// fused tensor's views point into it).
    private let views: [Int: UnsafePointer<UInt16>]
    /// The frozen tensors in the layout's order, with their bits.
    private let tensors: [(tensor: NamedTensor, bits: UnsafePointer<UInt16>)]
    /// The names of the tensors kept here, and their elements in all.
    public let tensorNames: Set<String>
    public let elementCount: Int
    /// The elements of the largest view: the widening scratch a model needs.
    public let largestView: Int
    /// What keeps the bits valid: the mapped files.
    private let owners: [AnyObject]

    /// `bits(tensor)` gives a tensor's bf16 bits and the object that keeps them valid, or nil to
    /// leave that tensor in the fp32 buffer. Every tensor of `layout.linearTensors` is offered.
    public init(layout: ParameterLayout, bits: (NamedTensor) -> (UnsafePointer<UInt16>, AnyObject)?) {
        var views: [Int: UnsafePointer<UInt16>] = [:], kept: [(tensor: NamedTensor, bits: UnsafePointer<UInt16>)] = []
        var owners: [ObjectIdentifier: AnyObject] = [:], largest = 0
        for (t, tensorViews) in layout.linearTensors {
            guard let (p, owner) = bits(t) else { continue }
            kept.append((t, p))
            owners[ObjectIdentifier(owner)] = owner
            for v in tensorViews {
                views[v.weight] = p + (v.weight - t.offset)
                largest = max(largest, v.inFeatures * v.outFeatures)
            }
        }
        self.views = views
        tensors = kept
        tensorNames = Set(kept.map(\.tensor.name))
        elementCount = kept.reduce(0) { $0 + $1.tensor.count }
        largestView = largest
        self.owners = Array(owners.values)
    }

    public var isEmpty: Bool { views.isEmpty }

    /// The bf16 bits of `view`'s weight, or nil when that weight is in the fp32 buffer.
    @inline(__always)
    public func bits(_ view: LinearView) -> UnsafePointer<UInt16>? { views[view.weight] }

    /// Hashes the frozen weights' bits (four bytes at a time), in the layout's order.
    public func fingerprint(into hash: inout FNV1a) {
        for (t, p) in tensors {
            let words = t.count / 2
            UnsafeRawPointer(p).withMemoryRebound(to: Float.self, capacity: words) { hash.add(words: $0, count: words) }
            if t.count % 2 == 1 { hash.add(Int(p[t.count - 1])) }
        }
    }
}

extension LayerViews {
    /// The layer's linears in forward order: q, k, v, o, gate, up, down.
    public var linears: [LinearView] { [q, k, v, o, gate, up, down] }
}

extension ParameterLayout {
    /// Each tensor that holds decoder linears' weights (q/k/v/o and the MLP's; a fused tensor once),
    /// with the views into it, in the layout's order: what a frozen model may keep in bf16.
    public var linearTensors: [(tensor: NamedTensor, views: [LinearView])] {
        var groups: [(tensor: NamedTensor, views: [LinearView])] = []
        var i = 0  // linears lie in the layout's order, so the holding tensor is never behind the last
        for v in layers.flatMap(\.linears) {
            while !tensors[i].range.contains(v.weight) { i += 1 }
            if groups.last?.tensor == tensors[i] { groups[groups.count - 1].views.append(v) } else { groups.append((tensors[i], [v])) }
        }
        return groups
    }

    /// Bytes the weights take: fp32 in the flat buffer, bf16 for those `frozen` keeps.
    public func weightBytes(frozen: FrozenWeights?) -> (fp32: Int, bf16: Int) {
        let kept = frozen?.elementCount ?? 0
        return (4 * (count - kept), 2 * kept)
    }
}
