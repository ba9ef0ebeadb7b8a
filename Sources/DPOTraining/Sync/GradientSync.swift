import DPOComm
import DPOKernels
import DPOModel
import Foundation

/// How one optimizer step's gradient is summed over its micro-batches and the ranks, and how the
/// updated parameters reach every rank. The training step calls every strategy the same way:
/// `AllReduceBuckets` (every rank holds everything) and `ZeroStageOne` (each rank owns a shard of the
/// optimizer state) today; ZeRO-2/3 would be two more.
///
/// Numeric semantics, the same for all: the gradient of a global batch is a sum over micro-batches
/// and ranks. Summed in fp32 its last bits would depend on how the batch is split (accumulation
/// steps, number of ranks, MPI's reduction order); each micro-batch's fp32 gradient is therefore
/// added into an fp64 accumulator, the accumulators are reduced in fp64, and the total is rounded
/// to fp32 once. Sums of a few fp32 numbers are exact in fp64, so the step is the same however it is split.
/// With one micro-batch per rank, a rank's fp32 gradient is itself its exact share: it travels as fp32
/// and is summed in fp64 on the way (`Communicator.allReduceSumWidened`, `reduceScatterSumWidened`),
/// the same bits with about half the bytes and no fp64 accumulator.
public protocol GradientSync: AnyObject {
    /// The range of the parameter set this rank's optimizer updates: all of it, or its shard.
    var shard: Range<Int> { get }
    /// Each rank's share of the parameter set, in rank order.
    var shardCounts: [Int] { get }
    /// Seconds the last step waited for reductions that backward did not hide.
    var lastWait: Double { get }
    /// Seconds spent in blocking reductions and gathers since the start.
    var blockingSeconds: Double { get }
    /// The part of `blockingSeconds` spent inside backward (buckets reduced as backward finishes them).
    var blockingSecondsInBackward: Double { get }
    /// Runs `train` on each micro-batch (forward and backward into `parameters.gradients`) and leaves
    /// the step's gradient, summed over the micro-batches and the ranks, in `parameters.gradients`
    /// over `shard`. Every rank calls it, also one whose share of a short last batch is empty.
    func sumGradients(of micros: [[Int]], into parameters: ParameterSet, source: GradientSource,
                      train: ([Int]) throws -> Void) throws
    /// Σ over the ranks of each rank's term for its shard (the squared norm of the whole gradient).
    func sumOverShards(_ x: Double) -> Double
    /// Each rank holds its shard of `buffer` (parameter-set sized); afterwards every rank holds all of it.
    func gatherShards(_ buffer: FloatBuffer)
}

/// What reports, during backward, how much of its gradient is final (the model).
public protocol GradientSource: AnyObject {
    /// Called with an offset: the gradients from there to the end are final for the batch.
    var onGradientsFinal: ((Int) -> Void)? { get set }
}

extension Transformer: GradientSource {}

extension ParallelOptions {
    /// The strategy these options name, for a parameter set of `count` elements and at most
    /// `microBatchesPerRank` micro-batches per rank and step.
    public func makeSync(comm: Communicator, count: Int, microBatchesPerRank: Int) -> GradientSync {
        let widened = widensFP32Gradients(microBatchesPerRank: microBatchesPerRank, allRanksOnOneHost: comm.allRanksOnOneHost)
        return zeroStage >= 1 ? ZeroStageOne(comm: comm, count: count, widened: widened)
            : AllReduceBuckets(comm: comm, count: count, options: self, widened: widened)
    }
}

/// Runs `body` (a blocking collective) and adds the seconds it took to `total`.
func addSeconds(to total: inout Double, _ body: () -> Void) {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    total += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// The fp64 sum of a step's micro-batch gradients (see `GradientSync`), allocated when first needed.
final class GradientAccumulator {
    let count: Int
    private var storage: UnsafeMutablePointer<Double>?

    init(count: Int) { self.count = count }
    deinit { storage?.deallocate() }

    /// The buffer, zeroed.
    func zeroed() -> UnsafeMutablePointer<Double> {
        let total = storage ?? .allocate(capacity: count)
        storage = total
        total.initialize(repeating: 0, count: count)
        return total
    }
}

extension GradientSync {
    /// One micro-batch on one rank: its fp32 gradient is already the exact total. Returns false (and
    /// runs nothing) otherwise.
    func sumExactly(_ micros: [[Int]], comm: Communicator, into parameters: ParameterSet,
                    train: ([Int]) throws -> Void) rethrows -> Bool {
        guard comm.worldSize == 1 && micros.count <= 1 else { return false }
        parameters.gradients!.zero()
        for micro in micros { try train(micro) }
        return true
    }
}
