import DPOSupport
import Foundation
import XCTest
@testable import DPOKernels

/// The element-wise kernels split over threads (one rank with several BLAS threads) give the same
/// bits as on one thread, and the split covers each range exactly once.
final class KernelThreadsTests: XCTestCase {
    var rng = SplitMix64(seed: 77)
    let blas = OpenBLASFP32()

    override func tearDown() { KernelThreads.set(1) }

    func randoms(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in scale * rng.nextGaussian() } }

    /// `body` run with 1 thread and with `threads`, its results compared bit for bit.
    func assertSameBitsOnThreads<T: Equatable>(_ what: String, threads: [Int] = [2, 3], _ body: () -> T,
                                               line: UInt = #line) {
        KernelThreads.set(1)
        let one = body()
        for n in threads {
            KernelThreads.set(n)
            XCTAssertEqual(body(), one, "\(what) on \(n) threads", line: line)
        }
        KernelThreads.set(1)
    }

    func testPiecesCoverTheRangeOnceAlignedAndInParallel() {
        for threads in [1, 2, 3, 5] {
            KernelThreads.set(threads)
            for n in [0, 15, 40_000, 100_003] {
                let expected = min(threads, n / 1_000)
                let lock = NSCondition()
                var pieces: [Range<Int>] = [], threadIDs = Set<UInt>()
                forEachPiece(of: n, minimum: 1_000, alignment: 16) { piece in
                    lock.lock()
                    pieces.append(piece)
                    threadIDs.insert(UInt(pthread_self()))
                    lock.broadcast()
                    // Each piece waits (a while at most) for a second one to start: pieces run one
                    // after the other would make this wait time out and the thread count below fail.
                    let deadline = Date().addingTimeInterval(5)
                    while expected > 1 && pieces.count < 2 && lock.wait(until: deadline) {}
                    lock.unlock()
                }
                pieces.sort { $0.lowerBound < $1.lowerBound }
                var next = 0
                for p in pieces {
                    XCTAssertEqual(p.lowerBound, next, "pieces of \(n) on \(threads) threads are contiguous")
                    XCTAssertEqual(p.lowerBound % 16, 0, "a piece starts on the alignment")
                    XCTAssertFalse(p.isEmpty && n > 0, "no empty piece")
                    next = p.upperBound
                }
                XCTAssertEqual(next, n, "pieces of \(n) on \(threads) threads cover it")
                XCTAssertEqual(pieces.count, max(expected, 1), "\(n) elements on \(threads) threads")
                if expected > 1 { XCTAssertGreaterThan(threadIDs.count, 1, "pieces ran on more than one thread") }
            }
        }
    }

    func testSplitKernelsGiveTheSameBits() {
        let count = 100_000
        let gate = randoms(count), up = randoms(count), dout = randoms(count)
        assertSameBitsOnThreads("swiglu forward") { () -> [Float] in
            var out = [Float](repeating: 0, count: count)
            swigluForward(out: &out, gate: gate, up: up, count: count)
            return out
        }
        assertSameBitsOnThreads("swiglu backward") { () -> [Float] in
            var dg = [Float](repeating: 0, count: count), du = dg
            swigluBackward(dgate: &dg, dup: &du, dout: dout, gate: gate, up: up, count: count)
            return dg + du
        }
        assertSameBitsOnThreads("residual add") { () -> [Float] in
            var y = gate
            addInPlace(&y, up, count: count)
            return y
        }
        let rows = 300, C = 576
        let x = randoms(rows * C), w = randoms(C)
        assertSameBitsOnThreads("rmsnorm forward") { () -> [Float] in
            var out = [Float](repeating: 0, count: rows * C), rstd = [Float](repeating: 0, count: rows)
            rmsnormForward(out: &out, rstd: &rstd, inp: x, weight: w, eps: 1e-5, rows: rows, channels: C)
            return out + rstd
        }
    }

    func testLogProbHeadGivesTheSameBitsSplitByRows() {
        let rows = 37, C = 16, V = 3_000, chunk = 16
        let h = randoms(rows * C), w = randoms(V * C, scale: 0.5), dl = randoms(rows)
        let targets: [Int32] = (0..<rows).map { Int32(($0 * 977 + 5) % V) }
        assertSameBitsOnThreads("log-prob head forward and backward") { () -> [Float] in
            var logp = [Float](repeating: 0, count: rows), lse = logp, sums = logp, entropy = logp, top1 = logp
            var scratch = [Float](repeating: 0, count: chunk * V)
            logProbForward(logp: &logp, lse: &lse, logitSum: &sums, entropy: &entropy, top1: &top1, hidden: h, weight: w,
                           targets: targets, rows: rows, channels: C, vocab: V, chunk: chunk, scratch: &scratch, matmul: blas)
            var dh = [Float](repeating: 0, count: rows * C), dw = [Float](repeating: 0, count: V * C)
            logProbBackward(dhidden: &dh, dweight: &dw, dlogp: dl, hidden: h, weight: w, targets: targets, rows: rows,
                            channels: C, vocab: V, chunk: chunk, scratch: &scratch, matmul: blas)
            return logp + lse + sums + entropy + top1 + dh + dw
        }
    }

    /// Blocks of 128 rows, so each block's softmax rows split; one sequence with a prefix.
    func testAttentionGivesTheSameBitsSplitByRows() {
        let H = 3, Hkv = 1, D = 8, blockRows = 128
        let starts = [0, 300], lengths = [300, 150], prefixStarts = [0, 0], prefixLengths = [0, 100]
        let T = 450, longest = 300
        let shape = AttentionShape(heads: H, kvHeads: Hkv, headDim: D, blockRows: blockRows)
        let q = randoms(T * H * D), k = randoms(T * Hkv * D), v = randoms(T * Hkv * D), g = randoms(T * H * D)
        assertSameBitsOnThreads("attention forward and backward") { () -> [Float] in
            var out = [Float](repeating: 0, count: T * H * D), lse = [Float](repeating: 0, count: T * H)
            var scratch = [Float](repeating: 0, count: shape.scratchCount(longest: longest))
            attentionForward(out: &out, lse: &lse, q: q, k: k, v: v, starts: starts, lengths: lengths, prefixStarts: prefixStarts,
                             prefixLengths: prefixLengths, sequences: 2, shape: shape, scratch: &scratch, matmul: blas)
            var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
            attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: g, q: q, k: k, v: v, out: out, lse: lse, starts: starts,
                              lengths: lengths, prefixStarts: prefixStarts, prefixLengths: prefixLengths, sequences: 2,
                              shape: shape, scratch: &scratch, longest: longest, matmul: blas)
            return out + lse + dq + dk + dv
        }
    }

    func testSumOfSquaresAgainstFloat64() {
        let n = 3 * normBlock + 1_234
        let x = randoms(n, scale: 0.01)
        let exact = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        let ours = x.withUnsafeBufferPointer { sumOfSquares($0.baseAddress!, range: 5..<n) }
        let exactFrom5 = x[5...].reduce(0.0) { $0 + Double($1) * Double($1) }
        XCTAssertEqual(ours, exactFrom5, accuracy: exactFrom5 * 1e-6)
        XCTAssertNotEqual(exact, exactFrom5)
    }
}
