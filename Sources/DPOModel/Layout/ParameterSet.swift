import DPOKernels
import Foundation

/// Parameters as the trainer sees them: one flat buffer of values, a gradient buffer of the same
/// layout once training needs one, and the table of named tensors in them. The optimizer, gradient
/// sync and checkpoints take a ParameterSet, never a model: today it is the whole model; with LoRA
/// it is the adapters beside a frozen base.
public final class ParameterSet {
    public let tensors: [NamedTensor]
    public let values: FloatBuffer
    /// nil until `enableGradients()`: a frozen set has none.
    public private(set) var gradients: FloatBuffer?

    public var count: Int { values.count }

    /// `values` must hold exactly the tensors' elements; nil allocates them zeroed.
    public init(tensors: [NamedTensor], values: FloatBuffer? = nil) {
        let count = tensors.last.map { $0.offset + $0.count } ?? 0
        if let values { precondition(values.count == count, "the buffer does not match the tensor table") }
        self.tensors = tensors
        self.values = values ?? FloatBuffer(count: count)
    }

    /// A zeroed gradient buffer, once.
    public func enableGradients() {
        if gradients == nil { gradients = FloatBuffer(count: count) }
    }
}
