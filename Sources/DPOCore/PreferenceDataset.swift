import Foundation

/// Tokenized preference pairs ready for training, after TRL's length rules:
/// - `max_prompt_length` (TRL before 1.0): a longer prompt keeps its last tokens;
/// - `max_length`: each sequence (prompt + completion) keeps its first `max_length` tokens;
/// - a pair whose prompt alone fills `max_length` is dropped and counted.
public struct PreferenceDataset: Sendable {
    public var pairs: [TokenizedPair]
    /// The source line of each kept pair.
    public var lines: [Int]
    /// The kept pairs as read (for reports).
    public var rows: [PreferencePair] = []
    public var droppedLongPrompts = 0
    public var identicalCompletions = 0
    public var skippedInvalid = 0

    public init(pairs: [TokenizedPair], lines: [Int]) {
        self.pairs = pairs
        self.lines = lines
    }

    public var count: Int { pairs.count }

    public static func load(path: String, tokenizer: Tokenizer, maxLength: Int?, maxPromptLength: Int?,
                            skipInvalid: Bool) throws -> PreferenceDataset {
        let (rows, skipped) = try PreferenceFile.load(path, skipInvalid: skipInvalid)
        var data = PreferenceDataset(pairs: [], lines: [])
        data.skippedInvalid = skipped
        for row in rows {
            if row.chosen == row.rejected { data.identicalCompletions += 1 }
            var pair = try TokenizedPair(row, tokenizer: tokenizer)
            if let maxPrompt = maxPromptLength, pair.promptLength > maxPrompt {
                let cut = pair.promptLength - maxPrompt
                pair = TokenizedPair(chosen: Array(pair.chosen.dropFirst(cut)), rejected: Array(pair.rejected.dropFirst(cut)),
                                     promptLength: maxPrompt)
            }
            if let maxLength {
                if pair.promptLength >= maxLength {
                    data.droppedLongPrompts += 1
                    continue
                }
                pair.chosen = Array(pair.chosen.prefix(maxLength))
                pair.rejected = Array(pair.rejected.prefix(maxLength))
            }
            data.pairs.append(pair)
            data.lines.append(row.line)
            data.rows.append(row)
        }
        if data.pairs.isEmpty {
            throw DPOError.file(path, "no pair left: all \(data.droppedLongPrompts) prompts fill max_length \(maxLength ?? 0)")
        }
        return data
    }

    /// A short account of what was dropped or suspicious, for the log.
    public func summary(path: String) -> [String] {
        var notes: [String] = []
        if skippedInvalid > 0 { notes.append("\(path): skipped \(skippedInvalid) invalid row(s)") }
        if droppedLongPrompts > 0 { notes.append("\(path): dropped \(droppedLongPrompts) pair(s) whose prompt fills max_length") }
        if identicalCompletions > 0 {
            notes.append("warning: \(path): \(identicalCompletions) pair(s) have chosen equal to rejected; they carry no preference")
        }
        return notes
    }

    /// A hash of the token ids and boundaries: what the reference log-prob cache and the ranks'
    /// start-up check key on.
    public var fingerprint: UInt64 {
        var h = FNV1a()
        for p in pairs {
            h.add(p.promptLength)
            h.add(p.chosen.count); p.chosen.forEach { h.add($0) }
            h.add(p.rejected.count); p.rejected.forEach { h.add($0) }
        }
        return h.value
    }
}

/// The order pairs are visited in: a permutation of the dataset per epoch, from the seed and the
/// epoch alone, so every rank computes the same one and a resumed run continues it exactly.
public struct EpochOrder: Sendable {
    public let count: Int
    public let seed: UInt64
    public let shuffle: Bool

    public init(count: Int, seed: UInt64, shuffle: Bool) {
        self.count = count; self.seed = seed; self.shuffle = shuffle
    }

    public func permutation(epoch: Int) -> [Int] {
        var order = Array(0..<count)
        guard shuffle else { return order }
        var rng = SplitMix64(seed: seed &+ 0x5DEE_CE66_D &* UInt64(epoch + 1))
        // Fisher–Yates with our own generator: the order must not depend on the platform's.
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        return order
    }
}

/// 64-bit FNV-1a over integers and bytes.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add(_ x: Int) {
        var v = UInt64(bitPattern: Int64(x))
        for _ in 0..<8 {
            value = (value ^ (v & 0xFF)) &* 0x100_0000_01b3
            v >>= 8
        }
    }
    public mutating func add<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
    /// Floats hashed four bytes at a time (fast enough for whole models).
    public mutating func add(words p: UnsafePointer<Float>, count: Int) {
        p.withMemoryRebound(to: UInt32.self, capacity: count) { w in
            for i in 0..<count { value = (value ^ UInt64(w[i])) &* 0x100_0000_01b3 }
        }
    }
    public mutating func add(floats p: UnsafePointer<Float>, count: Int) {
        UnsafeRawBufferPointer(start: p, count: count * 4).forEach { value = (value ^ UInt64($0)) &* 0x100_0000_01b3 }
    }
}
