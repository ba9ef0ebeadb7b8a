

/// Sequences of different lengths packed end to end into one block of tokens, with no padding:
/// attention is causal within each sequence, positions restart at 0 for each sequence, and only the
/// positions whose next token is scored go through the LM head.
public struct TokenBatch: Sendable {
    public private(set) var tokens: [Int32] = []
    public private(set) var positions: [Int32] = []
    public private(set) var starts: [Int] = []
    public private(set) var lengths: [Int] = []
    /// Rows (indices into `tokens`) whose next token is scored, in order, with that token and the
    /// sequence it belongs to.
    public private(set) var scoredRows: [Int32] = []
    public private(set) var scoredTargets: [Int32] = []
    public private(set) var scoredSequence: [Int32] = []

    public init() {}

    public var tokenCount: Int { tokens.count }
    public var sequenceCount: Int { starts.count }
    public var scoredCount: Int { scoredRows.count }
    public var longestSequence: Int { lengths.max() ?? 0 }

    /// Empties the batch, keeping its storage for the next one.
    public mutating func removeAll() {
        tokens.removeAll(keepingCapacity: true)
        positions.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
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

    /// The batch's arrays as pointers, for the kernels; valid inside `body` only.
    public struct Pointers {
        public let tokenCount: Int
        public let sequenceCount: Int
        public let scoredCount: Int
        public let tokens: UnsafePointer<Int32>
        public let positions: UnsafePointer<Int32>
        public let starts: UnsafePointer<Int>
        public let lengths: UnsafePointer<Int>
        public let scoredRows: UnsafePointer<Int32>
        public let scoredTargets: UnsafePointer<Int32>
    }

    public func withPointers<R>(_ body: (Pointers) throws -> R) rethrows -> R {
        try tokens.withUnsafeBufferPointer { t in
            try positions.withUnsafeBufferPointer { p in
                try starts.withUnsafeBufferPointer { s in
                    try lengths.withUnsafeBufferPointer { l in
                        try scoredRows.withUnsafeBufferPointer { r in
                            try scoredTargets.withUnsafeBufferPointer { g in
                                try body(Pointers(tokenCount: tokenCount, sequenceCount: sequenceCount, scoredCount: scoredCount,
                                                  tokens: t.baseAddress!, positions: p.baseAddress!, starts: s.baseAddress!,
                                                  lengths: l.baseAddress!, scoredRows: r.baseAddress!, scoredTargets: g.baseAddress!))
                            }
                        }
                    }
                }
            }
        }
    }
}
