import DPOComm
import DPOKernels
import DPOModel
import Foundation

/// ZeRO-1: each rank holds the optimizer state of its shard of the parameters. Gradients are
/// reduce-scattered, AdamW updates the shard, the parameters are all-gathered.
final class ZeroStageOne: GradientSync {
    let comm: Communicator
    let accumulator: GradientAccumulator
    let shardCounts: [Int]
    let shard: Range<Int>
    let lastWait = 0.0
    /// The reduce-scatter, the norm's sum and the all-gather, all blocking and after backward.
    private(set) var blockingSeconds = 0.0
    let blockingSecondsInBackward = 0.0

    /// The fp32 gradient is reduce-scattered and summed in fp64 on the way (`reduceScatterSumWidened`,
    /// the bits of the fp64 reduce-scatter; `ParallelOptions.widensFP32Gradients`).
    let widened: Bool

    init(comm: Communicator, count n: Int, widened: Bool) {
        self.comm = comm
        self.widened = widened
        accumulator = GradientAccumulator(count: n)
        // Shards are whole multiples of the gradient-norm block, so the norm sums the same blocks
        // however many ranks there are.
        let w = comm.worldSize
        let chunk = (n + w * normBlock - 1) / (w * normBlock) * normBlock
        shardCounts = (0..<w).map { r in min((r + 1) * chunk, n) - min(r * chunk, n) }
        let start = comm.offsets(shardCounts)[comm.rank]
        shard = start..<(start + shardCounts[comm.rank])
    }

    func sumGradients(of micros: [[Int]], into parameters: ParameterSet, source: GradientSource,
                      train: ([Int]) throws -> Void) throws {
        if try sumExactly(micros, comm: comm, into: parameters, train: train) { return }
        let grads = parameters.gradients!
        if widened {
            grads.zero()  // also for a rank whose share of a short last batch is empty
            for micro in micros { try train(micro) }
            addSeconds(to: &blockingSeconds) { comm.reduceScatterSumWidened(grads.pointer, counts: shardCounts) }
            return
        }
        let total = accumulator.zeroed()
        for micro in micros {
            grads.zero()
            try train(micro)
            accumulateWidened(total, grads.pointer, range: 0..<accumulator.count)
        }
        addSeconds(to: &blockingSeconds) { comm.reduceScatterSum(total, counts: shardCounts) }
        roundToFloat(grads.pointer, total, range: shard)
    }

    func sumOverShards(_ x: Double) -> Double {
        var sum = [x]
        addSeconds(to: &blockingSeconds) { sum.withUnsafeMutableBufferPointer { comm.allReduceSum($0.baseAddress!, count: 1) } }
        return sum[0]
    }

    func gatherShards(_ buffer: FloatBuffer) { addSeconds(to: &blockingSeconds) { comm.allGather(buffer.pointer, counts: shardCounts) } }
}
