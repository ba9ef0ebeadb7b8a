import CMPI
import DPOComm
import Foundation

/// Open MPI through the C shim.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let worldSize: Int
    public let allRanksOnOneHost: Bool
    public let ranksOnThisHost: Int

    public init() {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 { MPI_Init(nil, nil) }
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(dpo_mpi_comm_world(), &r)
        MPI_Comm_size(dpo_mpi_comm_world(), &n)
        rank = Int(r)
        worldSize = Int(n)
        var local: MPI_Comm? = nil
        MPI_Comm_split_type(dpo_mpi_comm_world(), dpo_mpi_comm_type_shared(), r, dpo_mpi_info_null(), &local)
        var localSize: Int32 = 0
        MPI_Comm_size(local, &localSize)
        MPI_Comm_free(&local)
        allRanksOnOneHost = localSize == n
        ranksOnThisHost = Int(localSize)
    }

    /// MPI counts are Int32: large buffers go in pieces.
    private func inPieces(_ count: Int, _ body: (Int, Int32) -> Void) {
        var offset = 0
        while offset < count {
            let n = min(count - offset, Int(Int32.max))
            body(offset, Int32(n))
            offset += n
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        inPieces(count) { offset, n in
            MPI_Allreduce(dpo_mpi_in_place(), buffer + offset, n, dpo_mpi_float(), dpo_mpi_sum(), dpo_mpi_comm_world())
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        inPieces(count) { offset, n in
            MPI_Allreduce(dpo_mpi_in_place(), buffer + offset, n, dpo_mpi_double(), dpo_mpi_sum(), dpo_mpi_comm_world())
        }
    }

    public func broadcast(_ bytes: [UInt8]) -> [UInt8] {
        var count = Int64(bytes.count)
        MPI_Bcast(&count, 1, dpo_mpi_int64(), 0, dpo_mpi_comm_world())
        var data = rank == 0 ? bytes : [UInt8](repeating: 0, count: Int(count))
        data.withUnsafeMutableBytes { raw in
            _ = MPI_Bcast(raw.baseAddress, Int32(count), dpo_mpi_byte(), 0, dpo_mpi_comm_world())
        }
        return data
    }

    private var pending: [MPI_Request?] = []
    private var scatterScratch: UnsafeMutablePointer<Double>?
    private var scatterScratchCount = 0

    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Double>, counts: [Int]) {
        let mine = counts[rank]
        if scatterScratchCount < mine {
            scatterScratch?.deallocate()
            scatterScratch = .allocate(capacity: max(mine, 1))
            scatterScratchCount = mine
        }
        var counts32 = counts.map { Int32($0) }
        MPI_Reduce_scatter(buffer, scatterScratch, &counts32, dpo_mpi_double(), dpo_mpi_sum(), dpo_mpi_comm_world())
        (buffer + offsets(counts)[rank]).update(from: scatterScratch!, count: mine)
    }

    public func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        var counts32 = counts.map { Int32($0) }
        var displacements = offsets(counts).map { Int32($0) }
        MPI_Allgatherv(dpo_mpi_in_place(), 0, dpo_mpi_datatype_null(), buffer, &counts32, &displacements,
                       dpo_mpi_float(), dpo_mpi_comm_world())
    }

    public private(set) var secondsInNonBlockingCalls = 0.0

    private func timed<T>(_ body: () -> T) -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { secondsInNonBlockingCalls += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return body()
    }

    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        timed { startPieces(buffer, count: count) }
    }

    private func startPieces(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        inPieces(count) { offset, n in
            var request: MPI_Request? = dpo_mpi_request_null()
            MPI_Iallreduce(dpo_mpi_in_place(), buffer + offset, n, dpo_mpi_double(), dpo_mpi_sum(), dpo_mpi_comm_world(), &request)
            pending.append(request)
        }
    }

    /// Open MPI moves non-blocking collectives on only inside MPI calls: a test of the pending
    /// requests from time to time keeps them going while backward computes.
    public func progress() {
        guard !pending.isEmpty else { return }
        timed {
            var done: Int32 = 0
            MPI_Testall(Int32(pending.count), &pending, &done, dpo_mpi_statuses_ignore())
        }
    }

    @discardableResult
    public func waitAll() -> Double {
        guard !pending.isEmpty else { return 0 }
        let start = DispatchTime.now().uptimeNanoseconds
        timed { _ = MPI_Waitall(Int32(pending.count), &pending, dpo_mpi_statuses_ignore()) }
        pending.removeAll(keepingCapacity: true)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    public func barrier() { MPI_Barrier(dpo_mpi_comm_world()) }

    public func abort(_ message: String, code: Int32) -> Never {
        reportError(message)
        MPI_Abort(dpo_mpi_comm_world(), code)
        exit(code)
    }

    public func finalize() { MPI_Finalize() }
}
