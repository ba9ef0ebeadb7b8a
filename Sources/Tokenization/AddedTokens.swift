import Foundation

extension Tokenizer {
    /// Text still to be tokenized, or an added token already resolved to its id.
    enum Piece {
        case text(String)
        case token(Int)
    }

    /// Cuts added tokens out of a text the way `tokenizers`' AddedVocabulary does: a trie over
    /// UTF-8 finds the leftmost, then longest, pattern; then `single_word` may reject the match
    /// and `lstrip`/`rstrip` may widen it over neighbouring whitespace.
    struct AddedTokenMatcher {
        private struct Node {
            var children: [UInt8: Int] = [:]
            var token: AddedToken?
        }

        private var nodes = [Node()]
        /// Bytes that start some pattern: most positions of a text are rejected with one load.
        private var startsPattern = [Bool](repeating: false, count: 256)

        /// `patterns` pairs the text each token matches (its content, normalized if the token is
        /// looked for in normalized text) with the token.
        init(_ patterns: [(String, AddedToken)]) {
            for (pattern, token) in patterns where !pattern.isEmpty {
                var node = 0
                for byte in pattern.utf8 {
                    if let child = nodes[node].children[byte] {
                        node = child
                    } else {
                        nodes.append(Node())
                        nodes[node].children[byte] = nodes.count - 1
                        node = nodes.count - 1
                    }
                }
                nodes[node].token = token
                startsPattern[Int(pattern.utf8.first!)] = true
            }
        }

        var isEmpty: Bool { nodes.count == 1 }

        func split(_ text: String) -> [Piece] {
            guard !text.isEmpty else { return [] }
            guard !isEmpty else { return [.text(text)] }
            let bytes = Array(text.utf8)
            var pieces: [Piece] = []
            var pieceStart = 0
            var position = 0
            while position < bytes.count {
                guard let (token, matchEnd) = longestMatch(in: bytes, at: position) else {
                    position += 1
                    continue
                }
                var start = position
                var stop = matchEnd
                // The automaton resumes after the match whatever the checks below decide.
                position = matchEnd
                if token.singleWord {
                    let wordBefore = Self.scalar(endingAt: start, in: bytes).map(Self.isWordCharacter) ?? false
                    let wordAfter = Self.scalar(startingAt: stop, in: bytes).map(Self.isWordCharacter) ?? false
                    if wordBefore || wordAfter { continue }
                }
                if token.lstrip {
                    // Whitespace an earlier match already took stays with that match.
                    start = max(Self.whitespaceStart(before: start, in: bytes), pieceStart)
                }
                if token.rstrip {
                    stop = Self.whitespaceEnd(after: stop, in: bytes)
                }
                if pieceStart < start {
                    pieces.append(.text(String(decoding: bytes[pieceStart ..< start], as: UTF8.self)))
                }
                pieces.append(.token(token.id))
                pieceStart = stop
            }
            if pieceStart < bytes.count {
                pieces.append(.text(String(decoding: bytes[pieceStart...], as: UTF8.self)))
            }
            return pieces
        }

        private func longestMatch(in bytes: [UInt8], at start: Int) -> (AddedToken, Int)? {
            guard startsPattern[Int(bytes[start])] else { return nil }
            var node = 0
            var best: (AddedToken, Int)?
            var position = start
            while position < bytes.count, let child = nodes[node].children[bytes[position]] {
                node = child
                position += 1
                if let token = nodes[node].token { best = (token, position) }
            }
            return best
        }

        // The helpers below read one scalar next to a byte offset; the bytes are valid UTF-8
        // and offsets fall on scalar boundaries, since patterns are whole UTF-8 strings.

        private static func scalar(endingAt end: Int, in bytes: [UInt8]) -> Unicode.Scalar? {
            guard end > 0 else { return nil }
            var start = end - 1
            while start > 0, bytes[start] & 0xC0 == 0x80 { start -= 1 }
            return String(decoding: bytes[start ..< end], as: UTF8.self).unicodeScalars.first
        }

        private static func scalar(startingAt start: Int, in bytes: [UInt8]) -> Unicode.Scalar? {
            guard start < bytes.count else { return nil }
            var end = start + 1
            while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
            return String(decoding: bytes[start ..< end], as: UTF8.self).unicodeScalars.first
        }

        /// The start of the whitespace run that ends at `end` (Rust regex `\s*$`).
        private static func whitespaceStart(before end: Int, in bytes: [UInt8]) -> Int {
            var start = end
            while let scalar = scalar(endingAt: start, in: bytes), scalar.properties.isWhitespace {
                start -= scalar.utf8.count
            }
            return start
        }

        /// The end of the whitespace run that starts at `start` (Rust regex `^\s*`).
        private static func whitespaceEnd(after start: Int, in bytes: [UInt8]) -> Int {
            var end = start
            while let scalar = scalar(startingAt: end, in: bytes), scalar.properties.isWhitespace {
                end += scalar.utf8.count
            }
            return end
        }

        /// Rust regex `\w`: alphabetic, marks, decimal digits, connector punctuation, join controls.
        private static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
            let properties = scalar.properties
            if properties.isAlphabetic || properties.isJoinControl { return true }
            switch properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
            default: return false
            }
        }
    }
}
