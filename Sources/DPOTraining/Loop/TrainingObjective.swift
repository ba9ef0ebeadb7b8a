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
    /// Work before the first step (precomputing reference log-probs).
    func prepare(outputDir: String) throws
    /// After the final eval, on rank 0: OUTPUT_DIR/eval_report.md (DPO: and report.html).
    func writeReport(outputDir: String, metrics: [(String, Double)]) throws
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
