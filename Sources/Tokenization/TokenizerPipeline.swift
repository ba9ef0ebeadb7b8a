import Foundation

// The steps around the BPE model, each as `tokenizers` defines it. All text handling goes through
// Unicode scalars, UTF-8 or UTF-16, never Swift Characters: a grapheme cluster such as " " + a
// combining accent is one Character, but `tokenizers` sees a space followed by an accent.

extension Tokenizer {
    /// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes map to
    /// themselves, the other 68 bytes to U+0100 onwards.
    enum ByteLevel {
        static let scalarForByte: [Unicode.Scalar] = {
            let printable = Array(UInt8(ascii: "!") ... UInt8(ascii: "~")) + Array(0xA1 ... 0xAC) + Array(0xAE ... 0xFF)
            var table = [Unicode.Scalar](repeating: " ", count: 256)
            for byte in printable { table[Int(byte)] = Unicode.Scalar(byte) }
            var next: UInt32 = 256
            for byte in 0 ... 255 where !printable.contains(UInt8(byte)) {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
            return table
        }()

        static let byteForScalar: [Unicode.Scalar: UInt8] = {
            var map: [Unicode.Scalar: UInt8] = [:]
            for (byte, scalar) in scalarForByte.enumerated() { map[scalar] = UInt8(byte) }
            return map
        }()

        static func encode(_ text: String) -> String {
            var scalars = String.UnicodeScalarView()
            for byte in text.utf8 { scalars.append(scalarForByte[Int(byte)]) }
            return String(scalars)
        }

        /// `tokenizers` maps a token back to bytes only if every character is in the table;
        /// otherwise (an added token such as a run of spaces) it takes the token's own UTF-8.
        static func decode(_ token: String) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(token.unicodeScalars.count)
            for scalar in token.unicodeScalars {
                guard let byte = byteForScalar[scalar] else { return Array(token.utf8) }
                bytes.append(byte)
            }
            return bytes
        }

        /// The GPT-2 pre-tokenization regex that `ByteLevel` uses when `use_regex` is true.
        static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    }

    // MARK: - Normalizer

    indirect enum Normalizer {
        case nfc
        case sequence([Normalizer])

        init(_ json: JSON) throws {
            let type = try json.typeName(section: "normalizer")
            switch type {
            case "NFC": self = .nfc
            case "Sequence": self = .sequence(try json.requiredArray("normalizers", section: "normalizer").map(Normalizer.init))
            default: throw SchemaError("normalizer: unsupported type \"\(type)\" (supported: NFC, Sequence)")
            }
        }

        func apply(_ text: String) -> String {
            switch self {
            case .nfc: return text.precomposedStringWithCanonicalMapping
            case .sequence(let steps): return steps.reduce(text) { $1.apply($0) }
            }
        }
    }

    // MARK: - Splitting

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
                var pieces: [Range<Int>] = []
                var previousWasMatch = false
                for segment in segments {
                    if let last = pieces.last, segment.isMatch == previousWasMatch {
                        pieces[pieces.count - 1] = last.lowerBound ..< segment.range.upperBound
                    } else {
                        pieces.append(segment.range)
                    }
                    previousWasMatch = segment.isMatch
                }
                return pieces
            case .mergedWithPrevious:
                var pieces: [Range<Int>] = []
                var previousWasMatch = false
                for segment in segments {
                    if let last = pieces.last, segment.isMatch && !previousWasMatch {
                        pieces[pieces.count - 1] = last.lowerBound ..< segment.range.upperBound
                    } else {
                        pieces.append(segment.range)
                    }
                    previousWasMatch = segment.isMatch
                }
                return pieces
            case .mergedWithNext:
                var pieces: [Range<Int>] = []
                var nextWasMatch = false
                for segment in segments.reversed() {
                    if let last = pieces.last, segment.isMatch && !nextWasMatch {
                        pieces[pieces.count - 1] = segment.range.lowerBound ..< last.upperBound
                    } else {
                        pieces.append(segment.range)
                    }
                    nextWasMatch = segment.isMatch
                }
                return pieces.reversed()
            }
        }
    }

    /// What a split looks for: a regex (compiled once), or a test on each character.
    enum SplitPattern {
        case regex(NSRegularExpression)
        case character((Unicode.Scalar) -> Bool)

        static func compile(_ pattern: String, section: String) throws -> SplitPattern {
            do {
                return .regex(try NSRegularExpression(pattern: pattern))
            } catch {
                throw SchemaError("\(section): cannot compile regex \(pattern): \(error)")
            }
        }

        /// Splits `text` into non-empty pieces. Offsets are UTF-16 code units, NSRegularExpression's unit.
        func split(_ text: String, behavior: SplitBehavior, invert: Bool = false) -> [String] {
            let units = Array(text.utf16)
            if units.isEmpty { return [] }
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
            return behavior.pieces(segments).compactMap { range in
                range.isEmpty ? nil : String(decoding: units[range], as: UTF16.self)
            }
        }
    }

    // MARK: - Pre-tokenizer

    indirect enum PreTokenizer {
        case byteLevel(addPrefixSpace: Bool, regex: SplitPattern?)
        case split(SplitPattern, behavior: SplitBehavior, invert: Bool)
        case digits(individual: Bool)
        case punctuation(behavior: SplitBehavior)
        case sequence([PreTokenizer])

        init(_ json: JSON) throws {
            let type = try json.typeName(section: "pre_tokenizer")
            let section = "pre_tokenizer \(type)"
            switch type {
            case "ByteLevel":
                let useRegex = json["use_regex"]?.bool ?? true
                self = .byteLevel(addPrefixSpace: try json.requiredBool("add_prefix_space", section: section),
                                  regex: useRegex ? try SplitPattern.compile(ByteLevel.gpt2Pattern, section: section) : nil)
            case "Split":
                let pattern: String
                if let regex = json["pattern"]?["Regex"]?.string {
                    pattern = regex
                } else if let literal = json["pattern"]?["String"]?.string {
                    pattern = NSRegularExpression.escapedPattern(for: literal)
                } else {
                    throw SchemaError("\(section): \"pattern\" must be {\"Regex\": ...} or {\"String\": ...}")
                }
                self = .split(try SplitPattern.compile(pattern, section: section),
                              behavior: try SplitBehavior(json["behavior"], section: section),
                              invert: try json.requiredBool("invert", section: section))
            case "Digits":
                self = .digits(individual: json["individual_digits"]?.bool ?? false)
            case "Punctuation":
                self = .punctuation(behavior: json["behavior"] == nil ? .isolated : try SplitBehavior(json["behavior"], section: section))
            case "Sequence":
                self = .sequence(try json.requiredArray("pretokenizers", section: section).map(PreTokenizer.init))
            default:
                throw SchemaError("pre_tokenizer: unsupported type \"\(type)\" (supported: ByteLevel, Split, Digits, Punctuation, Sequence)")
            }
        }

        /// Each step splits every current piece and drops empty results, as `PreTokenizedString.split` does.
        func apply(_ pieces: [String]) -> [String] {
            switch self {
            case .byteLevel(let addPrefixSpace, let regex):
                return pieces.flatMap { piece -> [String] in
                    // Byte test, not hasPrefix(" "): a leading space + combining mark is one Character.
                    let text = addPrefixSpace && piece.utf8.first != UInt8(ascii: " ") ? " " + piece : piece
                    let words = regex?.split(text, behavior: .isolated) ?? [text]
                    return words.map(ByteLevel.encode)
                }
            case .split(let pattern, let behavior, let invert):
                return pieces.flatMap { pattern.split($0, behavior: behavior, invert: invert) }
            case .digits(let individual):
                let digit = SplitPattern.character(Self.isNumeric)
                return pieces.flatMap { digit.split($0, behavior: individual ? .isolated : .contiguous) }
            case .punctuation(let behavior):
                let punctuation = SplitPattern.character(Self.isPunctuation)
                return pieces.flatMap { punctuation.split($0, behavior: behavior) }
            case .sequence(let steps):
                return steps.reduce(pieces) { $1.apply($0) }
            }
        }

        /// Rust's `char::is_numeric`: general category Nd, Nl or No.
        static func isNumeric(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar.properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: return true
            default: return false
            }
        }

        /// ASCII punctuation (which includes symbols such as `$+<=>^|~`) or any Unicode P* category.
        static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
            if scalar.isASCII {
                return (0x21 ... 0x2F).contains(scalar.value) || (0x3A ... 0x40).contains(scalar.value)
                    || (0x5B ... 0x60).contains(scalar.value) || (0x7B ... 0x7E).contains(scalar.value)
            }
            switch scalar.properties.generalCategory {
            case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                 .initialPunctuation, .finalPunctuation, .otherPunctuation:
                return true
            default:
                return false
            }
        }
    }

    // MARK: - Post-processor

    indirect enum PostProcessor {
        /// Only trims offsets, which ids do not have.
        case byteLevel
        /// The "single" template: special-token ids around the sequence.
        case template([TemplatePiece])
        case sequence([PostProcessor])

        enum TemplatePiece {
            case specialTokens([Int])
            case sequence
        }

        init(_ json: JSON) throws {
            let type = try json.typeName(section: "post_processor")
            let section = "post_processor \(type)"
            switch type {
            case "ByteLevel":
                self = .byteLevel
            case "TemplateProcessing":
                let specialTokens = json["special_tokens"]?.object ?? [:]
                self = .template(try json.requiredArray("single", section: section).map { item in
                    if let name = item["SpecialToken"]?["id"]?.string {
                        guard let ids = specialTokens[name]?["ids"]?.array?.compactMap(\.int) else {
                            throw SchemaError("\(section): special token \"\(name)\" is not in \"special_tokens\"")
                        }
                        return .specialTokens(ids)
                    }
                    guard item["Sequence"] != nil else { throw SchemaError("\(section): unknown template item") }
                    return .sequence
                })
            case "Sequence":
                self = .sequence(try json.requiredArray("processors", section: section).map(PostProcessor.init))
            default:
                throw SchemaError("post_processor: unsupported type \"\(type)\" (supported: ByteLevel, TemplateProcessing, Sequence)")
            }
        }

        func apply(_ ids: [Int]) -> [Int] {
            switch self {
            case .byteLevel:
                return ids
            case .template(let pieces):
                return pieces.flatMap { piece -> [Int] in
                    switch piece {
                    case .specialTokens(let special): return special
                    case .sequence: return ids
                    }
                }
            case .sequence(let steps):
                return steps.reduce(ids) { $1.apply($0) }
            }
        }
    }

    // MARK: - Decoder

    indirect enum TokenDecoder {
        case byteLevel
        case sequence([TokenDecoder])

        init(_ json: JSON) throws {
            let type = try json.typeName(section: "decoder")
            switch type {
            case "ByteLevel": self = .byteLevel
            case "Sequence": self = .sequence(try json.requiredArray("decoders", section: "decoder").map(TokenDecoder.init))
            default: throw SchemaError("decoder: unsupported type \"\(type)\" (supported: ByteLevel, Sequence)")
            }
        }

        /// `tokenizers`' decode_chain: tokens in, tokens out; the caller joins the result.
        func decodeChain(_ tokens: [String]) -> [String] {
            switch self {
            case .byteLevel:
                // One string for all tokens: a character's bytes may be split across tokens.
                // Invalid UTF-8 becomes U+FFFD per maximal invalid subpart, as Rust's from_utf8_lossy.
                return [String(decoding: tokens.flatMap(ByteLevel.decode), as: UTF8.self)]
            case .sequence(let steps):
                return steps.reduce(tokens) { $1.decodeChain($0) }
            }
        }
    }
}
