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

    /// fp64 partial sums of a ring's chunks (the one sent and the one received) and an fp32 chunk received.
    private var ringWide = (UnsafeMutablePointer<Double>.allocate(capacity: 1), UnsafeMutablePointer<Double>.allocate(capacity: 1))
    private var ringNarrow = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var ringCapacity = 1

    /// A ring reduce-scatter whose first hop sends each rank's own fp32 values and whose later hops send
    /// fp64 partial sums, each piece's full sum rounded to fp32 once on the rank that completes it, then
    /// an fp32 all-gather. Per rank that is (p-1)/p of the fp32 bytes in the gather, 1/p fp32 and
    /// (p-2)/p fp64 in the ring: for two ranks an fp32 all-reduce's bytes, half an fp64 one's.
    public func allReduceSumWidened(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        let p = worldSize
        if p == 1 || count == 0 { return }
        inPieces(count) { offset, n in
            let x = buffer + offset, sizes = (0..<p).map { r in (r + 1) * Int(n) / p - r * Int(n) / p }
            ringReduceScatterWidened(x, sizes: sizes)
            var counts = sizes.map { Int32($0) }
            var displacements = offsets(sizes).map { Int32($0) }
            MPI_Allgatherv(dpo_mpi_in_place(), 0, dpo_mpi_datatype_null(), x, &counts, &displacements,
                           dpo_mpi_float(), dpo_mpi_comm_world())
        }
    }

    /// ZeRO-1's reduce-scatter of fp32 gradients summed in fp64, the same ring without the gather.
    public func reduceScatterSumWidened(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        if worldSize > 1 { ringReduceScatterWidened(buffer, sizes: counts) }
    }

    /// Rank r ends with piece r of `x` (pieces of `sizes`, in rank order) summed over the ranks in fp64
    /// and rounded to fp32; the other pieces are left undefined. The ring runs over blocks of at most
    /// `ringBlock` elements of every piece at a time, so its scratch stays small (ZeRO-1's pieces are
    /// whole shards). In each, at step s rank r sends piece (r - 1 - s) mod p to rank r + 1 (its own
    /// fp32 values at s = 0, else the fp64 partial sum it made in step s - 1) and receives piece
    /// (r - 2 - s) mod p from rank r - 1, adding its own values.
    private func ringReduceScatterWidened(_ x: UnsafeMutablePointer<Float>, sizes: [Int]) {
        let p = worldSize, r = rank, starts = offsets(sizes)
        let largest = sizes.max() ?? 0, capacity = min(largest, ringBlock)
        if ringCapacity < capacity {
            ringWide.0.deallocate(); ringWide.1.deallocate(); ringNarrow.deallocate()
            ringWide = (.allocate(capacity: capacity), .allocate(capacity: capacity))
            ringNarrow = .allocate(capacity: capacity)
            ringCapacity = capacity
        }
        let next = Int32((r + 1) % p), previous = Int32((r + p - 1) % p), world = dpo_mpi_comm_world()
        var first = 0  // every rank walks the same blocks: `largest` is the same everywhere
        repeat {
            func size(_ c: Int) -> Int { max(0, min(ringBlock, sizes[c] - first)) }
            func start(_ c: Int) -> Int { starts[c] + first }
            var (sent, received) = ringWide
            for s in 0..<(p - 1) {
                let out = (r - 1 - s + 2 * p) % p, into = (r - 2 - s + 2 * p) % p
                let own = x + start(into), k = size(into)
                if s == 0 {
                    MPI_Sendrecv(x + start(out), Int32(size(out)), dpo_mpi_float(), next, 0,
                                 ringNarrow, Int32(k), dpo_mpi_float(), previous, 0, world, dpo_mpi_status_ignore())
                    for i in 0..<k { received[i] = Double(ringNarrow[i]) + Double(own[i]) }
                } else {
                    MPI_Sendrecv(sent, Int32(size(out)), dpo_mpi_double(), next, 0,
                                 received, Int32(k), dpo_mpi_double(), previous, 0, world, dpo_mpi_status_ignore())
                    for i in 0..<k { received[i] += Double(own[i]) }
                }
                swap(&sent, &received)
            }
            for i in 0..<size(r) { x[start(r) + i] = Float(sent[i]) }
            first += ringBlock
        } while first < largest
    }

    /// Elements of each piece a ring step moves at most (16 MB of fp32, 32 MB of fp64 partial sums);
    /// DPO_DIST_RING_BLOCK sets another (the tests take a small one, so that a tiny model's pieces
    /// go round in several blocks).
    private let ringBlock = ProcessInfo.processInfo.environment["DPO_DIST_RING_BLOCK"].flatMap { Int($0) }.map { max(1, $0) } ?? 1 << 22

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
