import DPOKernels

/// Elements per fp32 partial sum in `sumOfSquares`.
public let normBlock = 4096

/// Σ p[i]² over a range, in fp32 blocks of `normBlock` elements (fast, ~1e-7 relative each) added in
/// float64. A range starting on a block boundary sums the same blocks as the whole buffer would.
public func sumOfSquares(_ p: ConstFloatPtr, range: Range<Int>) -> Double {
    var total = 0.0
    var i = range.lowerBound
    while i < range.upperBound {
        let end = min(i + normBlock, range.upperBound)
        var s: Float = 0
        for j in i..<end { s += p[j] * p[j] }
        total += Double(s)
        i = end
    }
    return total
}
