

/// Sequences of different lengths packed end to end into one block of tokens, with no padding:
/// attention is causal within each sequence, positions restart at 0 for each sequence, and only the
/// positions whose next token is scored go through the LM head.
///
/// A sequence may also attend to a *prefix*: rows of an earlier sequence that it shares (a DPO
/// pair's prompt, computed once for both completions). Its own tokens then continue the prefix's
/// positions, and each of them attends to the whole prefix and, causally, to its own earlier tokens.
public struct TokenBatch: Sendable {
    public private(set) var tokens: [Int32] = []
    public private(set) var positions: [Int32] = []
    /// Each logical sequence's own contiguous tokens.
    public private(set) var starts: [Int] = []
    public private(set) var lengths: [Int] = []
    /// Each sequence's attended prefix: rows `prefixStarts[s] ..< prefixStarts[s] + prefixLengths[s]`
    /// (length 0: none), which precede the sequence's own tokens in its attention and positions.
    public private(set) var prefixStarts: [Int] = []
    public private(set) var prefixLengths: [Int] = []
    /// Rows (indices into `tokens`) whose next token is scored, in order, with that token and the
    /// sequence it belongs to.
    public private(set) var scoredRows: [Int32] = []
    public private(set) var scoredTargets: [Int32] = []
    public private(set) var scoredSequence: [Int32] = []

    public init() {}

    public var tokenCount: Int { tokens.count }
    public var sequenceCount: Int { starts.count }
    public var scoredCount: Int { scoredRows.count }
    /// The most keys one query row attends to: prefix + own tokens of the longest sequence.
    public var longestSequence: Int { zip(prefixLengths, lengths).map { $0 + $1 }.max() ?? 0 }

    /// Empties the batch, keeping its storage for the next one.
    public mutating func removeAll() {
        tokens.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        prefixStarts.removeAll(keepingCapacity: true)
        prefixLengths.removeAll(keepingCapacity: true)
        scoredRows.removeAll(keepingCapacity: true)
        scoredTargets.removeAll(keepingCapacity: true)
        scoredSequence.removeAll(keepingCapacity: true)
    }

    /// Appends a sequence whose last position is scored against a placeholder target: the row whose
    /// logits give the next token when generating.
    public mutating func appendForGeneration(_ ids: [Int]) {
        precondition(!ids.isEmpty)
        append(ids, scoreFrom: ids.count)
        scoredRows.append(Int32(tokens.count - 1))
        scoredTargets.append(0)
        scoredSequence.append(Int32(starts.count - 1))
    }

    /// Appends one sequence. Tokens `ids[scoreFrom...]` are scored: each is predicted from the
    /// position before it, so `scoreFrom` must be at least 1. `scoreFrom == ids.count` scores nothing.
    public mutating func append<C: Collection>(_ ids: C, scoreFrom: Int) where C.Element == Int {
        precondition(scoreFrom >= 1 || ids.isEmpty, "the first token of a sequence has no prediction")
        let start = tokens.count
        let sequence = Int32(starts.count)
        starts.append(start)
        lengths.append(ids.count)
        prefixStarts.append(start)
        prefixLengths.append(0)
        for (i, id) in ids.enumerated() {
            tokens.append(Int32(id))
            positions.append(Int32(i))
            if i >= scoreFrom {
                scoredRows.append(Int32(start + i - 1))
                scoredTargets.append(Int32(id))
                scoredSequence.append(sequence)
            }
        }
    }

    /// Appends two sequences that begin with the same `shared` tokens, the shared part computed once:
    /// tokens [shared, rest of `first`, rest of `second`]. `first` is a plain sequence; `second` owns
    /// only its tokens after the shared ones (positions `shared`, `shared` + 1, ...) and attends to the
    /// shared rows as its prefix, never to the rest of `first`. Both score their tokens from
    /// `scoreFrom` on (at least `shared`, at least 1), each predicted from the row of the token before
    /// it; `second`'s token `shared` is predicted from the last shared row, which `first` may score too.
    public mutating func appendSharingPrefix(_ first: [Int], _ second: [Int], shared: Int, scoreFrom: Int) {
        precondition(shared >= 1 && shared <= first.count && shared <= second.count && scoreFrom >= shared,
                     "a shared prefix must be non-empty, within both sequences and unscored")
        precondition(first[..<shared] == second[..<shared], "the shared tokens differ between the two sequences")
        let groupStart = tokens.count
        append(first, scoreFrom: scoreFrom)
        let start = tokens.count
        let sequence = Int32(starts.count)
        starts.append(start)
        lengths.append(second.count - shared)
        prefixStarts.append(groupStart)
        prefixLengths.append(shared)
        for i in shared..<second.count {
            tokens.append(Int32(second[i]))
            positions.append(Int32(i))
        }
        for i in scoreFrom..<max(scoreFrom, second.count) {
            // Token i follows token i − 1: a shared row, or one of this sequence's own.
            let previous = i - 1 < shared ? groupStart + i - 1 : start + (i - 1 - shared)
            scoredRows.append(Int32(previous))
            scoredTargets.append(Int32(second[i]))
            scoredSequence.append(sequence)
        }
    }

    /// The batch's arrays as pointers, for the kernels; valid inside `body` only.
    public struct Pointers {
        public let tokenCount: Int
        public let sequenceCount: Int
        public let scoredCount: Int
        public let tokens: UnsafePointer<Int32>
        public let positions: UnsafePointer<Int32>
        public let starts: UnsafePointer<Int>
        public let lengths: UnsafePointer<Int>
        public let prefixStarts: UnsafePointer<Int>
        public let prefixLengths: UnsafePointer<Int>
        public let scoredRows: UnsafePointer<Int32>
        public let scoredTargets: UnsafePointer<Int32>
    }

    public func withPointers<R>(_ body: (Pointers) throws -> R) rethrows -> R {
        try tokens.withUnsafeBufferPointer { t in
            try positions.withUnsafeBufferPointer { p in
                try starts.withUnsafeBufferPointer { s in
                    try lengths.withUnsafeBufferPointer { l in
                        try prefixStarts.withUnsafeBufferPointer { ps in
                            try prefixLengths.withUnsafeBufferPointer { pl in
                                try scoredRows.withUnsafeBufferPointer { r in
                                    try scoredTargets.withUnsafeBufferPointer { g in
                                        try body(Pointers(tokenCount: tokenCount, sequenceCount: sequenceCount, scoredCount: scoredCount,
                                                          tokens: t.baseAddress!, positions: p.baseAddress!, starts: s.baseAddress!,
                                                          lengths: l.baseAddress!, prefixStarts: ps.baseAddress!,
                                                          prefixLengths: pl.baseAddress!, scoredRows: r.baseAddress!,
                                                          scoredTargets: g.baseAddress!))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
