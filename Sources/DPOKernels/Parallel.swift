import Foundation

// The element-wise kernels' share of a process's cores. With one rank per core every kernel runs on
// its rank's thread; with one rank and several BLAS threads, the kernels that are pure element-wise
// maps (every output depends on its own inputs only) split their range over as many threads, so the
// cores the matrix products use are not left idle between them. A split never changes a bit: each
// element is computed by the same operations whichever thread computes it.

public enum KernelThreads {
    /// Threads the element-wise kernels split over: the BLAS thread count (`setBLASThreads`).
    nonisolated(unsafe) public private(set) static var count = 1

    static func set(_ n: Int) { count = max(1, n) }
}

/// Calls `body` on disjoint pieces of 0..<n that together cover it, on up to `KernelThreads.count`
/// threads at once; pieces start on multiples of `alignment` and hold at least `minimum` elements,
/// so a small range runs on the calling thread alone.
@inline(__always)
func forEachPiece(of n: Int, minimum: Int = 32_768, alignment: Int = 16, _ body: (Range<Int>) -> Void) {
    let threads = min(KernelThreads.count, n / max(minimum, 1))
    if threads <= 1 {
        body(0..<n)
        return
    }
    let per = (n + threads - 1) / threads
    let step = (per + alignment - 1) / alignment * alignment
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        let lower = min(n, t * step), upper = min(n, lower + step)
        if lower < upper { body(lower..<upper) }
    }
}
