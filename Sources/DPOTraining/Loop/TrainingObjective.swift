import Foundation

/// What a training run optimises: DPO over preference pairs, or SFT over sequences. The loop
/// (batches, gradient reduction, clipping, AdamW, schedule, logging, eval, checkpoints) is shared.
public protocol TrainingObjective: AnyObject {
    /// Number of training examples.
    var exampleCount: Int { get }
    /// Hash of the tokenized training data; a checkpoint refuses to resume on other data.
    var fingerprint: UInt64 { get }
    /// Hash of the tokenized eval data (0 without): ranks must agree on it.
    var evalFingerprint: UInt64 { get }
    /// The share of the global batch's normaliser that each example carries (1 per pair for DPO,
    /// its scored tokens for SFT), known to every rank without communication.
    func normalizerWeight(of example: Int) -> Double
    /// Tokens the forward pass over this example runs (as packed), for balancing micro-batches.
    func tokens(of example: Int) -> Int
    /// Forward and backward over one micro-batch of this rank, each example's loss scaled by
    /// 1/`normalizer` (the global batch's total weight), accumulating into the policy's gradients
    /// and the step's sums.
    func trainMicroBatch(_ examples: [Int], normalizer: Double, sums: inout StepSums) throws
    /// Sums for the eval set, reduced over ranks; nil without an eval set.
    func evaluate() throws -> StepSums?
    /// The metrics logged for a step's (or eval's) sums, TRL names, without the loss.
    func metrics(_ sums: StepSums, prefix: String) -> [(String, Double)]
    /// The largest micro-batch this run can meet (most tokens, in training or eval), for the start-up
    /// memory check: its tokens, its longest sequence, and where the longest example is ("FILE:LINE").
    func largestMicroBatch() -> (tokens: Int, longestSequence: Int, longestExample: String)
    /// Bytes of the reference model's activations for a micro-batch (0 without a reference model in
    /// the step: none, or log-probs precomputed), for the memory plan.
    func referenceActivationBytes(tokens: Int, longestSequence: Int) -> Int
    /// Allocates the reference model's activations for such a micro-batch (nothing without one).
    func reserveReferenceActivations(tokens: Int, longestSequence: Int)
    /// Work before the first step (precomputing reference log-probs).
    func prepare(outputDir: String) throws
    /// After the final eval, on rank 0: OUTPUT_DIR/eval_report.md (DPO: and report.html).
    func writeReport(outputDir: String, metrics: [(String, Double)]) throws
}

extension TrainingObjective {
    public func referenceActivationBytes(tokens: Int, longestSequence: Int) -> Int { 0 }
    public func reserveReferenceActivations(tokens: Int, longestSequence: Int) {}
}

/// The largest micro-batch of `size` examples among some: the `size` with the most tokens together,
/// the longest sequence among them, and where the longest example is. `tokens` and `longest` give
/// each example's tokens and its longest sequence; `source` names example i.
func largestMicroBatch(of size: Int, count: Int, tokens: (Int) -> Int, longest: (Int) -> Int,
                       source: (Int) -> String) -> (tokens: Int, longestSequence: Int, longestExample: String) {
    let chosen = (0..<count).sorted { tokens($0) > tokens($1) }.prefix(size)
    guard let first = chosen.first else { return (0, 0, "") }
    let longestIndex = chosen.max { longest($0) < longest($1) } ?? first
    return (chosen.reduce(0) { $0 + tokens($1) }, longest(longestIndex), source(longestIndex))
}

/// A global batch split into per-device batches of `size` examples (the last one smaller when the
/// batch is short), with about the same tokens in each: examples taken longest first (ties in batch
/// order), each into the batch with the fewest tokens so far that still has room (ties: the first),
/// each batch's examples then in the global batch's order. It depends on the global batch alone, never
/// on the number of ranks, so the same examples are packed together and a step gives the same bits
/// however the batches are dealt; the ranks of one micro-step carry about the same work and wait less
/// for each other at the gradient reduction.
func balancedMicroBatches(_ batch: [Int], size: Int, tokens: (Int) -> Int) -> [[Int]] {
    let size = max(size, 1)
    let count = (batch.count + size - 1) / size
    guard count > 1 else { return batch.isEmpty ? [] : [batch] }
    var room = [Int](repeating: size, count: count)
    if batch.count % size != 0 { room[count - 1] = batch.count % size }
    var load = [Int](repeating: 0, count: count)
    var members = [[Int]](repeating: [], count: count)  // positions in `batch`
    let cost = batch.map(tokens)
    for position in batch.indices.sorted(by: { cost[$0] != cost[$1] ? cost[$0] > cost[$1] : $0 < $1 }) {
        var best = -1
        for j in 0..<count where room[j] > 0 && (best < 0 || load[j] < load[best]) { best = j }
        room[best] -= 1
        load[best] += cost[position]
        members[best].append(position)
    }
    return members.map { $0.sorted().map { batch[$0] } }
}
