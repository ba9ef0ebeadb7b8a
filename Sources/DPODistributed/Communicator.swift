import CMPI
import DPOCore

/// The rank's view of the job: who it is, how many there are, and the collectives it needs.
/// With one rank every collective is a no-op.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Sums `count` floats in place across ranks.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func barrier()
}

/// World size 1: the debug mode, no MPI runtime needed.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func barrier() {}
}

/// Open MPI through the C shim.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let worldSize: Int

    public init() {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { MPI_Init(nil, nil) }
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(dpo_mpi_comm_world(), &r)
        MPI_Comm_size(dpo_mpi_comm_world(), &n)
        rank = Int(r)
        worldSize = Int(n)
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        var offset = 0
        while offset < count {  // MPI counts are Int32
            let n = min(count - offset, Int(Int32.max))
            MPI_Allreduce(dpo_mpi_in_place(), buffer + offset, Int32(n), dpo_mpi_float(), dpo_mpi_sum(), dpo_mpi_comm_world())
            offset += n
        }
    }

    public func barrier() { MPI_Barrier(dpo_mpi_comm_world()) }

    public func finalize() { MPI_Finalize() }
}
