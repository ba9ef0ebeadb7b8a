import Foundation

// The model's kernels. Each is a plain function: outputs first, inputs next, sizes last. Every
// `...Backward` is the mirror of its forward and ACCUMULATES into the gradients it is given (`+=`),
// so gradient accumulation over micro-batches needs no extra pass. All matrices are row-major.
// Weights are stored as torch's nn.Linear stores them: (out features, in features).

public typealias FloatPtr = UnsafeMutablePointer<Float>
public typealias ConstFloatPtr = UnsafePointer<Float>
