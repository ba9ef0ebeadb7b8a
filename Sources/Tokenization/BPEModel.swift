import Foundation

extension Tokenizer {
    /// The BPE model of `tokenizers`: a word starts as one symbol per character, and adjacent
    /// symbols are merged, lowest merge rank first (leftmost first among equal ranks), until no
    /// adjacent pair is in the merge table.
    ///
    /// Vocab and cache keys compare by UTF-8 (`ExactText`), not as Swift Strings do, by canonical
    /// equivalence ("é" == "e\u{301}", "Å" U+212B == "Å" U+00C5): `tokenizers` looks tokens up by
    /// their bytes, and SentencePiece vocabs hold canonically equivalent tokens (Llama 2's Greek U+03AF
    /// and U+1F77) and see raw text, where "▁Å" spelled either way must not share an id or a cache entry.
    final class BPEModel: @unchecked Sendable {
        struct Pair: Hashable {
            let left: Int
            let right: Int
        }

        struct Merge {
            let rank: Int
            let result: Int
        }

        private let vocab: [ExactText: Int]
        /// How many tokens the vocab has (`tokenizers`' vocab size without added tokens).
        var entryCount: Int { vocab.count }
        /// Token strings by id; nil where the model's ids have a gap.
        let tokensByID: [String?]
        let merges: [Pair: Merge]
        private let unknownID: Int?
        private let fuseUnknown: Bool
        /// The id of each byte's `<0xXX>` token, -1 where the vocab lacks it; empty without byte_fallback.
        private let byteTokenIDs: [Int]
        private let ignoreMerges: Bool
        private let continuingSubwordPrefix: String?
        private let endOfWordSuffix: String?

        // The same bounds as `tokenizers`' cache (10_000 words under 256 bytes) keep memory flat
        // over a large data set while the frequent words of any text hit.
        private static let cacheCapacity = 10_000
        private static let cacheMaxWordBytes = 256
        private var cache: [ExactText: [Int]] = [:]
        private let cacheLock = NSLock()

        /// `entries`: the vocab as the file writes it (VocabEntries: a String-keyed dictionary would
        /// merge canonically equivalent tokens). `addedTokens`: how many "added_tokens" the file has;
        /// their ids may sit among the vocab's.
        init(_ schema: BPESchema, entries: [(token: String, id: Int)], addedTokens: Int) throws {
            // A key written twice keeps its last id, as serde's map does.
            var vocab: [ExactText: Int] = [:]
            vocab.reserveCapacity(entries.count)
            for (token, id) in entries { vocab[ExactText(token)] = id }
            self.vocab = vocab
            // Ids lie below the number of entries plus the added tokens (which may take ids among
            // them), as in every tokenizer `tokenizers` writes; checked before the id table is
            // allocated, so a damaged file cannot ask for a table of trillions of entries.
            let bound = vocab.count + addedTokens
            for (token, id) in vocab where id < 0 || id >= bound {
                throw SchemaError("model: token \"\(token.text)\" has id \(id), outside 0..<\(bound) (\(vocab.count) entries and \(addedTokens) added tokens)")
            }
            var tokens = [String?](repeating: nil, count: (vocab.values.max() ?? -1) + 1)
            for (token, id) in vocab { tokens[id] = token.text }
            tokensByID = tokens
            func id(_ token: String) -> Int? { vocab[ExactText(token)] }

            // As in `tokenizers`, the merged token is a + b without b's continuing-subword prefix,
            // and a later duplicate of a pair replaces the earlier one.
            let prefixLength = schema.continuingSubwordPrefix?.utf8.count ?? 0
            var merges: [Pair: Merge] = [:]
            merges.reserveCapacity(schema.merges.count)
            for (rank, (a, b)) in schema.merges.enumerated() {
                let merged = a + String(decoding: Array(b.utf8).dropFirst(prefixLength), as: UTF8.self)
                guard let left = id(a), let right = id(b), let result = id(merged) else {
                    let missing = [a, b, merged].first { id($0) == nil }!
                    throw SchemaError("model: merge \(rank) (\"\(a)\" \"\(b)\") needs \"\(missing)\", which is not in the vocab")
                }
                merges[Pair(left: left, right: right)] = Merge(rank: rank, result: result)
            }
            self.merges = merges

            if let unk = schema.unkToken {
                guard let unkID = id(unk) else { throw SchemaError("model: unk_token \"\(unk)\" is not in the vocab") }
                unknownID = unkID
            } else {
                unknownID = nil
            }
            fuseUnknown = schema.fuseUnk
            byteTokenIDs = schema.byteFallback
                ? (0 ..< 256).map { id(ByteFallback.tokenName(UInt8($0))) ?? -1 } : []
            ignoreMerges = schema.ignoreMerges
            continuingSubwordPrefix = schema.continuingSubwordPrefix
            endOfWordSuffix = schema.endOfWordSuffix
        }

        /// The id of `token`, compared by its UTF-8.
        func id(of token: String) -> Int? { vocab[ExactText(token)] }

        /// The ids of one pre-tokenized word.
        func tokenize(_ word: String) -> [Int] {
            if word.isEmpty { return [] }
            // Llama 3 style: a word that is itself in the vocab is one token, whatever the merges say.
            if ignoreMerges, let id = id(of: word) { return [id] }
            let cacheable = word.utf8.count < Self.cacheMaxWordBytes
            if cacheable {
                cacheLock.lock()
                let hit = cache[ExactText(word)]
                cacheLock.unlock()
                if let hit { return hit }
            }
            let ids = merge(initialSymbols(word))
            if cacheable {
                cacheLock.lock()
                if cache.count < Self.cacheCapacity { cache[ExactText(word)] = ids }
                cacheLock.unlock()
            }
            return ids
        }

        /// One symbol per character (Unicode scalar). A character missing from the vocab becomes its
        /// bytes' `<0xXX>` tokens with `byte_fallback` (when the vocab has all of them), else the unk
        /// token (consecutive ones fused into one if `fuse_unk`), or is dropped when the model has no
        /// unk token, exactly as `tokenizers` does. As there, a pending unk is not written before
        /// byte-fallback tokens, only before the next character found in the vocab.
        private func initialSymbols(_ word: String) -> [Int] {
            var symbols: [Int] = []
            symbols.reserveCapacity(word.utf8.count)
            var pendingUnknown = false
            let scalars = Array(word.unicodeScalars)
            for (index, scalar) in scalars.enumerated() {
                var piece = String(scalar)
                if index > 0, let prefix = continuingSubwordPrefix { piece = prefix + piece }
                if index == scalars.count - 1, let suffix = endOfWordSuffix { piece += suffix }
                if let id = id(of: piece) {
                    if pendingUnknown, let unknownID { symbols.append(unknownID) }
                    pendingUnknown = false
                    symbols.append(id)
                } else if !byteTokenIDs.isEmpty, piece.utf8.allSatisfy({ byteTokenIDs[Int($0)] >= 0 }) {
                    for byte in piece.utf8 { symbols.append(byteTokenIDs[Int(byte)]) }
                } else if let unknownID {
                    if pendingUnknown && !fuseUnknown { symbols.append(unknownID) }
                    pendingUnknown = true
                }
            }
            if pendingUnknown, let unknownID { symbols.append(unknownID) }
            return symbols
        }

        /// Applies the merges with a priority queue of candidate pairs over a linked list of
        /// symbols, as `tokenizers`' `Word::merge_all` does: O(n log n) even for very long words.
        private func merge(_ symbols: [Int]) -> [Int] {
            guard symbols.count > 1 else { return symbols }
            var ids = symbols
            var previous = Array(-1 ..< ids.count - 1)
            var next = Array(1 ... ids.count)
            next[ids.count - 1] = -1
            var removed = [Bool](repeating: false, count: ids.count)

            var queue = MergeQueue()
            for position in 0 ..< ids.count - 1 {
                if let merge = merges[Pair(left: ids[position], right: ids[position + 1])] {
                    queue.push(.init(rank: merge.rank, position: position, result: merge.result))
                }
            }
            while let top = queue.pop() {
                let position = top.position
                guard !removed[position], next[position] != -1 else { continue }
                let right = next[position]
                // A queued candidate is stale once either of its symbols has merged with another.
                guard let merge = merges[Pair(left: ids[position], right: ids[right])], merge.result == top.result else {
                    continue
                }
                ids[position] = merge.result
                removed[right] = true
                next[position] = next[right]
                if next[right] != -1 { previous[next[right]] = position }

                if previous[position] != -1,
                   let left = merges[Pair(left: ids[previous[position]], right: ids[position])] {
                    queue.push(.init(rank: left.rank, position: previous[position], result: left.result))
                }
                if next[position] != -1, let following = merges[Pair(left: ids[position], right: ids[next[position]])] {
                    queue.push(.init(rank: following.rank, position: position, result: following.result))
                }
            }
            return ids.indices.compactMap { removed[$0] ? nil : ids[$0] }
        }
    }

    /// A binary min-heap of merge candidates ordered by (rank, position).
    struct MergeQueue {
        struct Candidate {
            let rank: Int
            let position: Int
            let result: Int

            func precedes(_ other: Candidate) -> Bool {
                rank != other.rank ? rank < other.rank : position < other.position
            }
        }

        private var heap: [Candidate] = []

        mutating func push(_ candidate: Candidate) {
            heap.append(candidate)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].precedes(heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() -> Candidate? {
            guard !heap.isEmpty else { return nil }
            heap.swapAt(0, heap.count - 1)
            let top = heap.removeLast()
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var first = parent
                if left < heap.count, heap[left].precedes(heap[first]) { first = left }
                if right < heap.count, heap[right].precedes(heap[first]) { first = right }
                if first == parent { break }
                heap.swapAt(parent, first)
                parent = first
            }
            return top
        }
    }
}

extension Tokenizer.BPEModel {
    func token(_ id: Int) -> String? {
        tokensByID.indices.contains(id) ? tokensByID[id] : nil
    }
}

extension Tokenizer {
    /// A String that hashes and compares by its UTF-8 bytes, as Rust's `String` does.
    struct ExactText: Hashable {
        let text: String
        init(_ text: String) { self.text = text }

        static func == (a: ExactText, b: ExactText) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }

        func hash(into hasher: inout Hasher) {
            var text = text
            text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }
}
