import Foundation

/// N ranks as threads of one process (`--simulate-ranks N`): the distributed code path, steppable in
/// a debugger and testable without mpirun. Collectives meet at a barrier; sums are taken in rank
/// order, so results are deterministic.
public final class InProcessWorld: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    fileprivate var floatSlots: [UnsafeMutablePointer<Float>?]
    fileprivate var doubleSlots: [UnsafeMutablePointer<Double>?]
    fileprivate var floatResult: [Float] = []
    fileprivate var doubleResult: [Double] = []
    fileprivate var broadcastBytes: [UInt8] = []

    public init(size: Int) {
        self.size = size
        floatSlots = Array(repeating: nil, count: size)
        doubleSlots = Array(repeating: nil, count: size)
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

    /// Runs `body` on every rank, one thread each, and waits for all. The first error is rethrown.
    public func run(_ body: @escaping @Sendable (InProcessCommunicator) throws -> Void) throws {
        let comms = communicators()
        let lock = NSLock()
        var firstError: Error?
        let group = DispatchGroup()
        for comm in comms {
            group.enter()
            let thread = Thread {
                do { try body(comm) } catch {
                    lock.lock(); if firstError == nil { firstError = error }; lock.unlock()
                }
                group.leave()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        group.wait()
        if let firstError { throw firstError }
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

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        let w = world
        w.floatSlots[rank] = buffer
        w.barrier()
        if rank == 0 {
            if w.floatResult.count < count { w.floatResult = [Float](repeating: 0, count: count) }
            for i in 0..<count {
                var s: Float = 0
                for r in 0..<w.size { s += w.floatSlots[r]![i] }
                w.floatResult[i] = s
            }
        }
        w.barrier()
        w.floatResult.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: count) }
        w.barrier()
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        let w = world
        w.doubleSlots[rank] = buffer
        w.barrier()
        if rank == 0 {
            if w.doubleResult.count < count { w.doubleResult = [Double](repeating: 0, count: count) }
            for i in 0..<count {
                var s = 0.0
                for r in 0..<w.size { s += w.doubleSlots[r]![i] }
                w.doubleResult[i] = s
            }
        }
        w.barrier()
        w.doubleResult.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: count) }
        w.barrier()
    }

    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Double>, counts: [Int]) {
        allReduceSum(buffer, count: counts.reduce(0, +))
    }

    public func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        let w = world, offs = offsets(counts)
        w.floatSlots[rank] = buffer
        w.barrier()
        for r in 0..<w.size where r != rank {
            (buffer + offs[r]).update(from: w.floatSlots[r]! + offs[r], count: counts[r])
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
        FileHandle.standardError.write(Data("rank \(rank): \(message)\n".utf8))
        exit(code)
    }
}
