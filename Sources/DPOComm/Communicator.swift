import DPOSupport
import Foundation

/// The rank's view of the job: who it is, how many ranks there are, and the collectives training
/// needs. With one rank every collective is a no-op, so the single-process debug mode runs the same
/// code path as `mpirun -np N`. Implementations: `SingleProcessCommunicator` and `InProcessCommunicator` (ranks as
/// threads) here, `MPICommunicator` in DPODistributed.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Sums `count` floats in place across ranks; every rank gets the sum.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Sums `count` doubles in place across ranks (metrics: sums and counts).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Sums `count` floats in place across ranks in fp64 and rounds each sum to fp32 once: the result
    /// of widening every rank's values to fp64, an fp64 all-reduce and rounding (the gradient's exact
    /// sum, see `GradientSync`), wherever fp64 sums of the ranks' values are exact; with two ranks
    /// always. MPI sends fp32 on a ring's first hop and in its gather, about the bytes of an fp32
    /// all-reduce instead of an fp64 one.
    func allReduceSumWidened(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// `reduceScatterSum` of fp32 values summed in fp64 and rounded once (as `allReduceSumWidened`):
    /// this rank's segment of `buffer` holds the rounded sum afterwards, the others are undefined.
    func reduceScatterSumWidened(_ buffer: UnsafeMutablePointer<Float>, counts: [Int])
    /// Rank 0's bytes to every rank (configs and hashes for the start-up check).
    func broadcast(_ bytes: [UInt8]) -> [UInt8]
    /// Sums `buffer` (the concatenation of one segment per rank, `counts[r]` long) across ranks and
    /// leaves this rank's segment of the sum in place; other segments are left undefined (ZeRO-1).
    func reduceScatterSum(_ buffer: UnsafeMutablePointer<Double>, counts: [Int])
    /// Each rank holds its segment of `buffer`; afterwards every rank holds all segments (ZeRO-1).
    func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int])
    /// Starts summing `count` doubles in place across ranks without waiting (gradient buckets
    /// overlapped with backward). Completed by `waitAll`; `progress` lets the library move it on.
    func startAllReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    func progress()
    /// Waits for every started reduction; returns the seconds spent waiting.
    @discardableResult func waitAll() -> Double
    /// Seconds spent so far inside non-blocking collective calls (start, progress, wait): with
    /// every core computing, that is communication the backward pass did not hide.
    var secondsInNonBlockingCalls: Double { get }
    /// Whether every rank runs on this machine (reductions are then memory copies by the cores).
    var allRanksOnOneHost: Bool { get }
    /// How many ranks share this machine's memory (this one included).
    var ranksOnThisHost: Int { get }
    func barrier()
    /// Ends the whole job with a message: no rank is left waiting.
    func abort(_ message: String, code: Int32) -> Never
}

extension Communicator {
    public var isMain: Bool { rank == 0 }

    /// Widens, all-reduces in fp64 and rounds: the definition, for communicators whose bytes cost nothing.
    public func allReduceSumWidened(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        let wide = UnsafeMutablePointer<Double>.allocate(capacity: max(count, 1))
        defer { wide.deallocate() }
        for i in 0..<count { wide[i] = Double(buffer[i]) }
        allReduceSum(wide, count: count)
        for i in 0..<count { buffer[i] = Float(wide[i]) }
    }

    /// The widened all-reduce, which leaves every segment's sum (this rank's among them) in place.
    public func reduceScatterSumWidened(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        allReduceSumWidened(buffer, count: counts.reduce(0, +))
    }

    /// This rank's error line, `rank R: <message>` (see `DPOError.report`).
    public func reportError(_ message: String) { DPOError.report(message, rank: rank) }

    /// Segment offsets of `counts`.
    public func offsets(_ counts: [Int]) -> [Int] {
        var o: [Int] = []
        var total = 0
        for c in counts { o.append(total); total += c }
        return o
    }
}

/// Collectives that block: for communicators without a progress engine, the non-blocking calls run
/// to completion at once.
public protocol BlockingCollectives: Communicator {}
extension BlockingCollectives {
    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) { allReduceSum(buffer, count: count) }
    public func progress() {}
    @discardableResult public func waitAll() -> Double { 0 }
    public var secondsInNonBlockingCalls: Double { 0 }
    public var allRanksOnOneHost: Bool { true }
    public var ranksOnThisHost: Int { worldSize }
}
