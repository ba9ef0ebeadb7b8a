import DPOModel

/// The policy's `entropy` and `mean_token_accuracy` over one forward, as TRL 1.16 defines them
/// (`DPOTrainer._compute_loss`, `SFTTrainer.compute_loss`, the fused head in
/// `trl/kernels/chunked_logprob.py`):
/// - per scored token, the entropy −Σ_v p_v log p_v of the policy's next-token softmax (temperature
///   1: both trainers add the fused head with its default; no softcap or logit scale on the models
///   dpo-dist loads), and whether the target is the argmax (the first maximum, as `torch.argmax`).
///   Both come from the policy's own forward and carry no gradient; the reference's are not used.
/// - DPO: the entropy over the completion tokens of chosen and rejected (the positions logps sums;
///   prompt tokens masked), mean_token_accuracy over the chosen completion tokens only.
/// - SFT: both over the trained tokens (the completion with completion_only_loss, else every token
///   after the first).
/// - TRL takes, per micro-batch, the sums and token counts over all processes and logs their ratio,
///   then the plain mean of those ratios over the micro-batches of the logging window (eval: over
///   the eval batches). dpo-dist takes the ratio over an optimizer step's global batch (eval: all
///   eval rows) and the mean of the steps over the window: TRL's numbers with
///   gradient_accumulation_steps 1 (any number of ranks; the eval in one batch), and the same
///   number however the batch is split over ranks and micro-steps, where TRL's moves with the split
///   (as for `logits/*`).
public struct TokenStatistics: Sendable {
    public var entropy = 0.0
    public var entropyTokens = 0
    public var topOne = 0
    public var accuracyTokens = 0

    /// From `model`'s last forward over `batch`: every scored row counts for the entropy, those of the
    /// sequences `countsForAccuracy` accepts for the accuracy.
    init(model: Transformer, batch: TokenBatch, countsForAccuracy: (Int) -> Bool) {
        let h = model.scoredEntropy, top1 = model.scoredTop1
        for (i, s) in batch.scoredSequence.enumerated() {
            entropy += Double(h[i])
            entropyTokens += 1
            if countsForAccuracy(Int(s)) {
                topOne += Int(top1[i])
                accuracyTokens += 1
            }
        }
    }
}
