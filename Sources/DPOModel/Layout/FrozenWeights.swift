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
    /// The names of the tensors kept here, and their elements in all.
    public let tensorNames: Set<String>
    public let elementCount: Int
    /// The elements of the largest view: the widening scratch a model needs.
    public let largestView: Int
    /// What keeps the bits valid: the mapped files.
    private let owners: [AnyObject]

    /// `bits(name)` gives a tensor's bf16 bits and the object that keeps them valid, or nil to
    /// leave that tensor in the fp32 buffer. Every decoder linear of `layout` is offered.
    public init(layout: ParameterLayout, bits: (NamedTensor) -> (UnsafePointer<UInt16>, AnyObject)?) {
        var views: [Int: UnsafePointer<UInt16>] = [:], names = Set<String>(), owners: [ObjectIdentifier: AnyObject] = [:]
        var count = 0, largest = 0
        for t in layout.frozenLinearTensors {
            guard let (p, owner) = bits(t) else { continue }
            names.insert(t.name)
            count += t.count
            owners[ObjectIdentifier(owner)] = owner
            for v in layout.linearViews(in: t) {
                views[v.weight] = p + (v.weight - t.offset)
                largest = max(largest, v.inFeatures * v.outFeatures)
            }
        }
        self.views = views
        tensorNames = names
        elementCount = count
        largestView = largest
        self.owners = Array(owners.values)
    }

    public var isEmpty: Bool { views.isEmpty }
    public var bytes: Int { 2 * elementCount }

    /// The bf16 bits of `view`'s weight, or nil when that weight is in the fp32 buffer.
    @inline(__always)
    public func bits(_ view: LinearView) -> UnsafePointer<UInt16>? { views[view.weight] }

    /// Hashes the frozen weights' bits (four bytes at a time), in the layout's order.
    public func fingerprint(into hash: inout FNV1a, layout: ParameterLayout) {
        for t in layout.frozenLinearTensors where tensorNames.contains(t.name) {
            guard let p = views[t.offset] else { continue }
            let words = t.count / 2
            UnsafeRawPointer(p).withMemoryRebound(to: Float.self, capacity: words) { hash.add(words: $0, count: words) }
            if t.count % 2 == 1 { hash.add(Int(p[t.count - 1])) }
        }
    }
}

extension ParameterLayout {
    /// The tensors of the decoder layers' linears (q/k/v/o and the MLP's; fused ones once): what a
    /// frozen model may keep in bf16.
    public var frozenLinearTensors: [NamedTensor] {
        var offsets = Set<Int>()
        for l in layers {
            for v in [l.q, l.k, l.v, l.o, l.gate, l.up, l.down] { offsets.insert(v.weight) }
        }
        return tensors.filter { t in t.shape.count == 2 && offsets.contains { t.range.contains($0) } }
    }

    /// The linear views whose weights lie in `tensor`.
    public func linearViews(in tensor: NamedTensor) -> [LinearView] {
        layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }.filter { tensor.range.contains($0.weight) }
    }
}
