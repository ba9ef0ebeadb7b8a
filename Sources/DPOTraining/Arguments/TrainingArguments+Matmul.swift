import DPOKernels

extension TrainingArguments {
    /// A new matrix-product backend for one model of this run (each model keeps its own, since the
    /// bf16 backend keeps that model's rounded weights): oneDNN bf16 with `bf16`, else OpenBLAS fp32.
    public func makeMatmul() throws -> any MatmulBackend {
        bf16 ? try OneDNNBF16() : OpenBLASFP32()
    }
}
