import Foundation

/// A byte-level BPE trainer: split the corpus into words as the tokenizer's pre-tokenizer
/// will, then repeatedly merge the most frequent adjacent pair of symbols. Ties go to the pair
/// with the smaller ids (left, then right), the rule of `tokenizers`' BpeTrainer, which makes
/// the result a function of the corpus alone. Pairs seen only once are not merged: with a
/// small corpus they would be noise.
struct BPETrainer {
    /// Byte b is token id `byteIDOffset + b`, after the special tokens.
    static let byteIDOffset = TokenizerFiles.specialTokens.count

    /// Distinct words (byte-level strings) as symbol ids, and how often each occurs.
    private var words: [[Int]]
    private var counts: [Int]

    init(corpus: String) {
        // Special-token strings in the corpus are cut out first, as the tokenizer does when it
        // encodes: merges must never reach into them.
        var pieces = [corpus]
        for special in TokenizerFiles.specialTokens {
            pieces = pieces.flatMap { $0.components(separatedBy: special) }
        }
        let preTokenizer = Tokenizer.PreTokenizer.byteLevel(
            addPrefixSpace: false, regex: try! Tokenizer.SplitPattern.compile(Tokenizer.ByteLevel.gpt2Pattern, section: "init"))
        var frequency: [String: Int] = [:]
        for word in preTokenizer.apply(.init(pieces: pieces.filter { !$0.isEmpty }, firstAtStart: false)).pieces { frequency[word, default: 0] += 1 }
        // Sorted so that every run visits words in the same order (Dictionary order is seeded per process).
        let sorted = frequency.keys.sorted { Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
        words = sorted.map { word in
            word.unicodeScalars.map { Self.byteIDOffset + Int(Tokenizer.ByteLevel.byteForScalar[$0]!) }
        }
        counts = sorted.map { frequency[$0]! }
    }

    struct Result {
        var vocab: [String: Int]
        var merges: [(String, String)]
    }

    struct Pair: Hashable, Comparable {
        let left: Int, right: Int
        static func < (a: Pair, b: Pair) -> Bool { (a.left, a.right) < (b.left, b.right) }
    }

    mutating func train(merges maxMerges: Int) -> Result {
        var tokens = TokenizerFiles.specialTokens
        tokens += (0 ... 255).map { String(Character(Tokenizer.ByteLevel.scalarForByte[$0])) }
        var vocab = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
        var merges: [(String, String)] = []

        // Pair counts over the whole corpus, and for each pair the words that (may) hold it.
        // A merge only touches the words that hold its pair, so training costs about the size
        // of the corpus plus the work of the merges, not merges x corpus.
        var pairCounts: [Pair: Int] = [:]
        var wordsWithPair: [Pair: Set<Int>] = [:]
        func count(_ w: Int, _ sign: Int) {
            let symbols = words[w]
            for i in 0 ..< max(0, symbols.count - 1) {
                let pair = Pair(left: symbols[i], right: symbols[i + 1])
                pairCounts[pair, default: 0] += sign * counts[w]
                if sign > 0 { wordsWithPair[pair, default: []].insert(w) }
            }
        }
        for w in words.indices { count(w, +1) }

        while merges.count < maxMerges {
            var best: (pair: Pair, count: Int)?
            for (pair, n) in pairCounts where n > 0 {
                if let b = best, n < b.count || (n == b.count && b.pair < pair) { continue }
                best = (pair, n)
            }
            guard let (pair, n) = best, n >= 2 else { break }

            // Two different pairs can spell the same string ("a"+"bc", "ab"+"c"); the second
            // merge then reuses the first one's token, as `tokenizers` does.
            let merged = tokens[pair.left] + tokens[pair.right]
            let newID: Int
            if let existing = vocab[merged] {
                newID = existing
            } else {
                newID = tokens.count
                tokens.append(merged)
                vocab[merged] = newID
            }
            merges.append((tokens[pair.left], tokens[pair.right]))

            // Left to right without overlap, as `tokenizers` merges a word ("aaa" + (a,a) -> "aa a").
            for w in wordsWithPair[pair] ?? [] {
                count(w, -1)
                var out: [Int] = []
                out.reserveCapacity(words[w].count)
                var i = 0
                let symbols = words[w]
                while i < symbols.count {
                    if i + 1 < symbols.count, symbols[i] == pair.left, symbols[i + 1] == pair.right {
                        out.append(newID)
                        i += 2
                    } else {
                        out.append(symbols[i])
                        i += 1
                    }
                }
                words[w] = out
                count(w, +1)
            }
            wordsWithPair[pair] = nil
            pairCounts = pairCounts.filter { $0.value > 0 }
        }
        return Result(vocab: vocab, merges: merges)
    }
}
