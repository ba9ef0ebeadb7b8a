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

    init(comm: Communicator, count: Int, options: ParallelOptions) {
        self.comm = comm
        self.options = options
        accumulator = GradientAccumulator(count: count)
    }

    func sumGradients(of micros: [[Int]], into parameters: ParameterSet, source: GradientSource,
                      train: ([Int]) throws -> Void) throws {
        lastWait = 0
        if try sumExactly(micros, comm: comm, into: parameters, train: train) { return }
        if options.reduceDtype == .float32 {
            try sumInFloat32(of: micros, into: parameters, source: source, train: train)
            return
        }
        let grads = parameters.gradients!, all = 0..<accumulator.count
        let total = accumulator.zeroed()
        let bucketed = comm.worldSize > 1
        var reduced = 0
        for (index, micro) in micros.enumerated() {
            grads.zero()
            let overlapped = bucketed && index == micros.count - 1
            if overlapped {
                source.onGradientsFinal = { [unowned self] finalFrom in
                    while reduced < buckets.count, buckets[reduced].lowerBound >= finalFrom {
                        accumulateWidened(total, grads.pointer, range: buckets[reduced])
                        reduce(total, buckets[reduced])
                        reduced += 1
                    }
                    comm.progress()
                }
            }
            defer { source.onGradientsFinal = nil }
            try train(micro)
            if !overlapped { accumulateWidened(total, grads.pointer, range: all) }
        }
        if bucketed {
            // Every rank reduces every bucket, the same way, also one whose share of a short last
            // batch was empty (it contributes zeros).
            while reduced < buckets.count {
                reduce(total, buckets[reduced])
                reduced += 1
            }
            lastWait = comm.waitAll()
        } else {
            comm.allReduceSum(total, count: accumulator.count)
        }
        roundToFloat(grads.pointer, total, range: all)
    }

    /// Reduces one bucket of the fp64 sum: blocking, or started and left to `waitAll`.
    private func reduce(_ total: UnsafeMutablePointer<Double>, _ r: Range<Int>) {
        if options.blockingBuckets ?? comm.allRanksOnOneHost {
            let t0 = DispatchTime.now().uptimeNanoseconds
            comm.allReduceSum(total + r.lowerBound, count: r.count)
            blockingSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        } else {
            comm.startAllReduceSum(total + r.lowerBound, count: r.count)
        }
    }

    /// --reduce-dtype float32: each bucket of the last micro-batch's gradient (with the earlier
    /// micro-batches' added in fp64 and rounded once, when there are several) is all-reduced in fp32,
    /// blocking, as soon as backward has made it final.
    private func sumInFloat32(of micros: [[Int]], into parameters: ParameterSet, source: GradientSource,
                              train: ([Int]) throws -> Void) throws {
        let grads = parameters.gradients!, all = 0..<accumulator.count
        let total: UnsafeMutablePointer<Double>? = micros.count > 1 ? accumulator.zeroed() : nil
        var reduced = 0
        func reduceNext() {
            let r = buckets[reduced]
            if let total {
                accumulateWidened(total, grads.pointer, range: r)
                roundToFloat(grads.pointer, total, range: r)
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            comm.allReduceSum(grads.pointer + r.lowerBound, count: r.count)
            blockingSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            reduced += 1
        }
        grads.zero()  // a rank whose share of a short last batch is empty contributes zeros
        for (index, micro) in micros.enumerated() {
            grads.zero()
            let last = index == micros.count - 1
            if last {
                source.onGradientsFinal = { [unowned self] finalFrom in
                    while reduced < buckets.count, buckets[reduced].lowerBound >= finalFrom { reduceNext() }
                }
            }
            defer { source.onGradientsFinal = nil }
            try train(micro)
            if !last, let total { accumulateWidened(total, grads.pointer, range: all) }
        }
        while reduced < buckets.count { reduceNext() }
    }

    func sumOverShards(_ x: Double) -> Double { x }
    func gatherShards(_ buffer: FloatBuffer) {}
}
