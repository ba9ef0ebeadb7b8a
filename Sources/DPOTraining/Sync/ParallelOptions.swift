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
    /// What the ranks' gradients are summed in.
    public var reduceDtype: ReduceDtype = .float64

    public enum ReduceDtype: String, Sendable, CaseIterable {
        /// fp64 sums of each rank's fp32 gradient, rounded to fp32 once: exact, so the step is the
        /// same bits however the batch is split over ranks (the default).
        case float64
        /// fp32 sums, blocking per bucket: half the bytes (and no widening pass) for bandwidth-poor
        /// clusters; the last bits of the step then depend on the number of ranks (about 1e-7 relative).
        case float32

        /// Bytes per gradient element on the wire.
        public var bytes: Int { self == .float64 ? 8 : 4 }
    }

    /// Whether buckets reduce blocking: `blockingBuckets`, else when every rank is on one host.
    public func blocking(allRanksOnOneHost: Bool) -> Bool { blockingBuckets ?? allRanksOnOneHost }

    /// Whether the fp64 sum travels as fp32 and is summed in fp64 on the way (the same bits:
    /// `Communicator.allReduceSumWidened` for buckets, `reduceScatterSumWidened` for ZeRO-1): with one
    /// micro-batch per rank, whose fp32 gradient is then its exact share, under ZeRO-1 or with blocking
    /// fp64 buckets.
    public func widensFP32Gradients(microBatchesPerRank: Int, allRanksOnOneHost: Bool) -> Bool {
        microBatchesPerRank == 1
            && (zeroStage >= 1 || (reduceDtype == .float64 && blocking(allRanksOnOneHost: allRanksOnOneHost)))
    }

    /// Whether a rank keeps an fp64 sum of the gradient (8 bytes a trained parameter, the memory plan
    /// counts it): to add several micro-batches, or for the fp64 all-reduce of non-blocking buckets.
    /// One micro-batch per rank needs none: one rank trains it in place, the fp32 gradient is summed in
    /// fp64 on the way (`widensFP32Gradients`), or float32 sums in fp32.
    public func keepsFP64GradientSum(ranks: Int, microBatchesPerRank: Int, allRanksOnOneHost: Bool) -> Bool {
        microBatchesPerRank > 1
            || (ranks > 1 && reduceDtype == .float64
                && !widensFP32Gradients(microBatchesPerRank: microBatchesPerRank, allRanksOnOneHost: allRanksOnOneHost))
    }

    /// How a step's gradients travel between the ranks, for the start-up note.
    public func gradientPath(microBatchesPerRank: Int, allRanksOnOneHost: Bool) -> String {
        let widened = widensFP32Gradients(microBatchesPerRank: microBatchesPerRank, allRanksOnOneHost: allRanksOnOneHost)
        if zeroStage >= 1 {
            return (widened ? "fp32 reduce-scatter summed in fp64 on a ring (an fp64 one's bits)" : "fp64 reduce-scatter")
                + ", AdamW on each rank's shard, fp32 all-gather of the parameters (ZeRO-1)"
        }
        let buckets = String(format: "buckets of %g MB", bucketSizeMB)
        if reduceDtype == .float32 { return "fp32 all-reduce in \(buckets), blocking (the last bits depend on the number of ranks)" }
        if widened {
            return "summed in fp64 from fp32 \(buckets), blocking, on a ring (an fp64 all-reduce's bits, about an fp32 one's bytes)"
        }
        return "fp64 all-reduce in \(buckets), \(blocking(allRanksOnOneHost: allRanksOnOneHost) ? "blocking" : "non-blocking, overlapped with backward")"
    }

    public init(zeroStage: Int = 0, bucketSizeMB: Double = 25, blockingBuckets: Bool? = nil, reduceDtype: ReduceDtype = .float64) {
        self.zeroStage = zeroStage
        self.bucketSizeMB = bucketSizeMB
        self.blockingBuckets = blockingBuckets
        self.reduceDtype = reduceDtype
    }
}
