import DPOComm
import DPOKernels
import DPOModel
import Foundation

/// Every rank holds the whole optimizer state and the whole summed gradient. On several ranks the
/// last micro-batch's gradient is all-reduced in buckets, each as soon as backward has made it final.
final class AllReduceBuckets: GradientSync {
    let comm: Communicator
    let options: ParallelOptions
    let accumulator: GradientAccumulator
    var shard: Range<Int> { 0..<accumulator.count }
    var shardCounts: [Int] { [accumulator.count] }
    private(set) var lastWait = 0.0
    private(set) var blockingSeconds = 0.0
    private(set) var blockingSecondsInBackward = 0.0

    /// Contiguous ranges of about `bucketSizeMB` (of fp32 gradient), from the end of the buffer to
    /// its start: the order in which backward finishes them.
    lazy var buckets: [Range<Int>] = {
        let per = max(1, Int(options.bucketSizeMB * 1_048_576 / 4))
        var buckets: [Range<Int>] = []
        var end = accumulator.count
        while end > 0 {
            let start = max(0, end - per)
            buckets.append(start..<end)
            end = start
        }
        return buckets
    }()

    /// The fp64 sum with one micro-batch per rank: each rank's fp32 gradient is its exact share, so
    /// the buckets travel as fp32 and are summed in fp64 (`allReduceSumWidened`), the same bits as an
    /// fp64 all-reduce (`ParallelOptions.widensFP32Gradients`: a setting, the same on every rank).
    let widened: Bool

    init(comm: Communicator, count: Int, options: ParallelOptions, widened: Bool) {
        self.comm = comm
        self.options = options
        self.widened = widened
        accumulator = GradientAccumulator(count: count)
    }

    func sumGradients(of micros: [[Int]], into parameters: ParameterSet, source: GradientSource,
                      train: ([Int]) throws -> Void) throws {
        lastWait = 0
        if try sumExactly(micros, comm: comm, into: parameters, train: train) { return }
        let grads = parameters.gradients!, all = 0..<accumulator.count
        let bucketed = comm.worldSize > 1
        // --reduce-dtype float32: a rank's micro-batches are still added in fp64 and rounded once, then
        // each bucket is all-reduced in fp32, blocking; with one micro-batch its fp32 gradient is that sum.
        let float32 = options.reduceDtype == .float32
        let total: UnsafeMutablePointer<Double>? = (float32 || widened) && micros.count <= 1 ? nil : accumulator.zeroed()
        var reduced = 0
        /// The next bucket's sum over this rank's micro-batches is complete: reduce it over the ranks.
        func reduceNext() {
            let r = buckets[reduced]
            if float32 || widened {
                if let total { roundToFloat(grads.pointer, total, range: r) }
                addSeconds(to: &blockingSeconds) {
                    if widened {
                        comm.allReduceSumWidened(grads.pointer + r.lowerBound, count: r.count)
                    } else {
                        comm.allReduceSum(grads.pointer + r.lowerBound, count: r.count)
                    }
                }
            } else {
                reduce(total!, r)
            }
            reduced += 1
        }
        if micros.isEmpty { grads.zero() }  // a rank whose share of a short last batch is empty adds zeros
        for (index, micro) in micros.enumerated() {
            grads.zero()
            let overlapped = bucketed && index == micros.count - 1
            if overlapped {
                source.onGradientsFinal = { [unowned self] finalFrom in
                    let before = blockingSeconds
                    while reduced < buckets.count, buckets[reduced].lowerBound >= finalFrom {
                        if let total { accumulateWidened(total, grads.pointer, range: buckets[reduced]) }
                        reduceNext()
                    }
                    blockingSecondsInBackward += blockingSeconds - before
                    comm.progress()
                }
            }
            defer { source.onGradientsFinal = nil }
            try train(micro)
            if !overlapped { accumulateWidened(total!, grads.pointer, range: all) }
        }
        if bucketed {
            // Every rank reduces every bucket, the same way, also one whose share of a short last
            // batch was empty (it contributes zeros).
            while reduced < buckets.count { reduceNext() }
            lastWait = comm.waitAll()
            if float32 || widened { return }  // the sums are in place, rounded to fp32
        } else {
            comm.allReduceSum(total!, count: accumulator.count)
        }
        roundToFloat(grads.pointer, total!, range: all)
    }

    /// Reduces one bucket of the fp64 sum: blocking, or started and left to `waitAll`.
    private func reduce(_ total: UnsafeMutablePointer<Double>, _ r: Range<Int>) {
        if options.blocking(allRanksOnOneHost: comm.allRanksOnOneHost) {
            addSeconds(to: &blockingSeconds) { comm.allReduceSum(total + r.lowerBound, count: r.count) }
        } else {
            comm.startAllReduceSum(total + r.lowerBound, count: r.count)
        }
    }

    func sumOverShards(_ x: Double) -> Double { x }
    func gatherShards(_ buffer: FloatBuffer) {}
}
