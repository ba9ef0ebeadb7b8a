import Foundation

/// How the gradient of a step is reduced across ranks.
public struct ParallelOptions: Sendable {
    /// 0: every rank holds the whole optimizer state and all-reduces gradients. 1 (ZeRO-1): each rank
    /// holds the optimizer state of its shard of the parameters; gradients are reduce-scattered,
    /// AdamW updates the shard, parameters are all-gathered.
    public var zeroStage = 0
    /// Gradients are all-reduced in buckets of about this many MB (of fp32 gradient), each started
    /// as soon as backward has finished its layers.
    public var bucketSizeMB = 25.0
    /// Reduce each bucket with a blocking all-reduce as soon as backward finishes it, instead of a
    /// non-blocking one progressed between layers. nil: blocking when every rank is on one host,
    /// where a reduction is memory copies by the same cores that compute, so nothing overlaps and
    /// the blocking algorithms are faster (`dpo-dist bench-comm` measures both; see the README);
    /// across hosts the network moves the bytes while backward goes on.
    public var blockingBuckets: Bool?
    public init(zeroStage: Int = 0, bucketSizeMB: Double = 25, blockingBuckets: Bool? = nil) {
        self.zeroStage = zeroStage
        self.bucketSizeMB = bucketSizeMB
        self.blockingBuckets = blockingBuckets
    }
}
