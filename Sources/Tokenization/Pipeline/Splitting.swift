import Foundation

// Regex splitting as `tokenizers`' Split pre-tokenizer does it, with its split behaviours.
extension Tokenizer {
    /// How the matched parts of a split (the "delimiters") are kept; `tokenizers`' SplitDelimiterBehavior.
    enum SplitBehavior: String {
        case removed = "Removed"
        case isolated = "Isolated"
        case mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext"
        case contiguous = "Contiguous"

        init(_ json: JSON?, section: String) throws {
            guard let name = json?.string else { throw SchemaError("\(section): missing \"behavior\"") }
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw SchemaError("\(section): unknown behavior \"\(name)\"")
            }
            self = behavior
        }

        /// Turns a covering list of (range, isMatch) segments into the ranges of the pieces.
        func pieces(_ segments: [(range: Range<Int>, isMatch: Bool)]) -> [Range<Int>] {
            switch self {
            case .isolated:
                return segments.map(\.range)
            case .removed:
                return segments.filter { !$0.isMatch }.map(\.range)
            case .contiguous:
                return Self.joined(segments) { isMatch, neighbourWasMatch in isMatch == neighbourWasMatch }
            case .mergedWithPrevious:
                return Self.joined(segments) { isMatch, neighbourWasMatch in isMatch && !neighbourWasMatch }
            case .mergedWithNext:
                let reversed = segments.reversed().map { (range: $0.range, isMatch: $0.isMatch) }
                return Self.joined(reversed) { isMatch, neighbourWasMatch in isMatch && !neighbourWasMatch }.reversed()
            }
        }

        /// Walks the segments in order, joining each to the piece before it when `joins(its isMatch,
        /// the previous segment's isMatch)`; the pieces span both (whichever way the list runs).
        private static func joined(_ segments: [(range: Range<Int>, isMatch: Bool)],
                                   joins: (Bool, Bool) -> Bool) -> [Range<Int>] {
            var pieces: [Range<Int>] = []
            var previousWasMatch = false
            for segment in segments {
                if let last = pieces.last, joins(segment.isMatch, previousWasMatch) {
                    pieces[pieces.count - 1] = min(last.lowerBound, segment.range.lowerBound) ..< max(last.upperBound, segment.range.upperBound)
                } else {
                    pieces.append(segment.range)
                }
                previousWasMatch = segment.isMatch
            }
            return pieces
        }
    }

    /// What a split looks for: a regex (compiled once), or a test on each character.
    enum SplitPattern {
        case regex(NSRegularExpression)
        case character((Unicode.Scalar) -> Bool)

        static func compile(_ pattern: String, section: String) throws -> SplitPattern {
            .regex(try regex(pattern, section: section))
        }

        static func regex(_ pattern: String, section: String) throws -> NSRegularExpression {
            do {
                return try NSRegularExpression(pattern: pattern)
            } catch {
                throw SchemaError("\(section): cannot compile regex \(pattern): \(error)")
            }
        }

        /// Splits `text` into non-empty pieces. Offsets are UTF-16 code units, NSRegularExpression's unit.
        func split(_ text: String, behavior: SplitBehavior, invert: Bool = false) -> [String] {
            pieces(text, behavior: behavior, invert: invert).pieces
        }

        /// The pieces, and whether the first of them starts where `text` does.
        func pieces(_ text: String, behavior: SplitBehavior, invert: Bool = false) -> (pieces: [String], firstAtStart: Bool) {
            let units = Array(text.utf16)
            if units.isEmpty { return ([], false) }
            var segments: [(range: Range<Int>, isMatch: Bool)] = []
            var end = 0
            func addMatch(_ range: Range<Int>) {
                if end < range.lowerBound { segments.append((end ..< range.lowerBound, invert)) }
                segments.append((range, !invert))
                end = range.upperBound
            }
            switch self {
            case .regex(let regex):
                // An empty match still cuts the text around it in two (its own empty piece is
                // dropped), and counts as a match for the Merged*/Contiguous behaviors. Like the
                // Oniguruma iterator of `tokenizers` (and unlike ICU), skip an empty match right
                // where the previous match ended.
                var previousEnd: Int?
                regex.enumerateMatches(in: text, range: NSRange(location: 0, length: units.count)) { result, _, _ in
                    guard let range = result?.range else { return }
                    if range.length == 0, range.location == previousEnd { return }
                    addMatch(range.location ..< range.location + range.length)
                    previousEnd = range.location + range.length
                }
            case .character(let isMatch):
                var offset = 0
                for scalar in text.unicodeScalars {
                    let width = scalar.utf16.count
                    if isMatch(scalar) { addMatch(offset ..< offset + width) }
                    offset += width
                }
            }
            if end < units.count { segments.append((end ..< units.count, invert)) }
            let ranges = behavior.pieces(segments).filter { !$0.isEmpty }
            return (ranges.map { String(decoding: units[$0], as: UTF16.self) }, ranges.first?.lowerBound == 0)
        }
    }
}
