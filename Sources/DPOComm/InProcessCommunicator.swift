import Foundation

/// N ranks as threads of one process (`--simulate-ranks N`): the distributed code path, steppable in
/// a debugger and testable without mpirun. Collectives meet at a barrier; sums are taken in rank
/// order, so results are deterministic.
public final class InProcessWorld: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    /// Each rank's buffer for the collective under way.
    fileprivate var slots: [UnsafeMutableRawPointer?]
    /// Rank 0's sums, read by every rank.
    fileprivate var scratch: UnsafeMutableRawPointer?
    private var scratchBytes = 0
    fileprivate var broadcastBytes: [UInt8] = []

    public init(size: Int) {
        self.size = size
        slots = Array(repeating: nil, count: size)
    }

    deinit { scratch?.deallocate() }

    fileprivate func reserveScratch(bytes: Int) {
        guard bytes > scratchBytes else { return }
        scratch?.deallocate()
        scratch = .allocate(byteCount: bytes, alignment: 64)
        scratchBytes = bytes
    }

    func barrier() {
        condition.lock()
        let myGeneration = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == myGeneration { condition.wait() }
        }
        condition.unlock()
    }

    public func communicators() -> [InProcessCommunicator] {
        (0..<size).map { InProcessCommunicator(world: self, rank: $0) }
    }

    /// Runs `body` on every rank, one thread each, waits for all, and returns what each rank returned,
    /// in rank order. If any rank threw, the first error thrown is rethrown instead.
    @discardableResult
    public func run<Result>(_ body: @escaping @Sendable (InProcessCommunicator) throws -> Result) throws -> [Result] {
        let outcomes = RankOutcomes<Result>(ranks: size)
        let group = DispatchGroup()
        for comm in communicators() {
            group.enter()
            let thread = Thread {
                outcomes.record(rank: comm.rank) { try body(comm) }
                group.leave()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        group.wait()
        return try outcomes.collect()
    }
}

/// What the rank threads of `InProcessWorld.run` hand back, behind a lock.
private final class RankOutcomes<Result>: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result?]
    private var firstError: Error?

    init(ranks: Int) { results = Array(repeating: nil, count: ranks) }

    func record(rank: Int, _ body: () throws -> Result) {
        do {
            let result = try body()
            lock.lock(); results[rank] = result; lock.unlock()
        } catch {
            lock.lock(); if firstError == nil { firstError = error }; lock.unlock()
        }
    }

    /// Every rank's result once all have returned (each one did unless one threw).
    func collect() throws -> [Result] {
        lock.lock(); defer { lock.unlock() }
        if let firstError { throw firstError }
        return results.map { $0! }
    }
}

public final class InProcessCommunicator: Communicator, BlockingCollectives, @unchecked Sendable {
    public let world: InProcessWorld
    public let rank: Int
    public var worldSize: Int { world.size }

    init(world: InProcessWorld, rank: Int) {
        self.world = world
        self.rank = rank
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) { sumInRankOrder(buffer, count: count) }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) { sumInRankOrder(buffer, count: count) }

    /// Rank 0 adds the ranks' buffers in rank order into the world's scratch; then every rank copies it.
    private func sumInRankOrder<T: BinaryFloatingPoint>(_ buffer: UnsafeMutablePointer<T>, count: Int) {
        let w = world
        w.slots[rank] = UnsafeMutableRawPointer(buffer)
        w.barrier()
        if rank == 0 {
            w.reserveScratch(bytes: count * MemoryLayout<T>.stride)
            let result = w.scratch!.assumingMemoryBound(to: T.self)
            for i in 0..<count {
                var s: T = 0
                for r in 0..<w.size { s += w.slots[r]!.assumingMemoryBound(to: T.self)[i] }
                result[i] = s
            }
        }
        w.barrier()
        buffer.update(from: w.scratch!.assumingMemoryBound(to: T.self), count: count)
        w.barrier()
    }

    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Double>, counts: [Int]) {
        allReduceSum(buffer, count: counts.reduce(0, +))
    }

    public func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        let w = world, offs = offsets(counts)
        w.slots[rank] = UnsafeMutableRawPointer(buffer)
        w.barrier()
        for r in 0..<w.size where r != rank {
            (buffer + offs[r]).update(from: w.slots[r]!.assumingMemoryBound(to: Float.self) + offs[r], count: counts[r])
        }
        w.barrier()
    }

    public func broadcast(_ bytes: [UInt8]) -> [UInt8] {
        if rank == 0 { world.broadcastBytes = bytes }
        world.barrier()
        let result = world.broadcastBytes
        world.barrier()
        return result
    }

    public func barrier() { world.barrier() }

    /// Ends the whole process: the other ranks are threads of it.
    public func abort(_ message: String, code: Int32) -> Never {
        reportError(message)
        exit(code)
    }
}
