/// The rank's view of the job: who it is, how many ranks there are, and the collectives training
/// needs. With one rank every collective is a no-op, so the single-process debug mode runs the same
/// code path as `mpirun -np N`. Implementations: `SingleProcessCommunicator` here; MPI and in-process
/// threads in DPODistributed.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Sums `count` floats in place across ranks; every rank gets the sum.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Sums `count` doubles in place across ranks (metrics: sums and counts).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Rank 0's bytes to every rank (configs and hashes for the start-up check).
    func broadcast(_ bytes: [UInt8]) -> [UInt8]
    func barrier()
    /// Ends the whole job with a message: no rank is left waiting.
    func abort(_ message: String, code: Int32) -> Never
}

extension Communicator {
    public var isMain: Bool { rank == 0 }
}

public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func broadcast(_ bytes: [UInt8]) -> [UInt8] { bytes }
    public func barrier() {}
    public func abort(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        exit(code)
    }
}

import Foundation
