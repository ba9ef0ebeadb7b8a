import Foundation

// The pre-tokenizer stage: text → the words the BPE model sees.
extension Tokenizer {
    indirect enum PreTokenizer: PipelineStage {
        case byteLevel(addPrefixSpace: Bool, regex: SplitPattern?)
        case split(SplitPattern, behavior: SplitBehavior, invert: Bool)
        case digits(individual: Bool)
        case punctuation(behavior: SplitBehavior)
        /// SentencePiece's word marks: every space becomes `replacement` ("▁"), one is put before
        /// the text as `prependScheme` says, and with `split` each "▁" starts a new word.
        case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
        case sequence([PreTokenizer])

        enum PrependScheme: String {
            /// Before every piece of text.
            case always
            /// Before the piece that starts the input only: not after an added token.
            case first
            case never

            /// The replacement and scheme of a Metaspace pre-tokenizer or decoder.
            static func metaspace(_ json: JSON, section: String) throws -> (Unicode.Scalar, PrependScheme) {
                guard let replacement = json["replacement"]?.string, replacement.unicodeScalars.count == 1 else {
                    throw SchemaError("\(section): \"replacement\" must be one character")
                }
                var scheme = PrependScheme.always
                if let name = json["prepend_scheme"]?.string {
                    guard let known = PrependScheme(rawValue: name) else {
                        throw SchemaError("\(section): unknown prepend_scheme \"\(name)\" (first, always or never)")
                    }
                    scheme = known
                }
                // Files from tokenizers < 0.19 say add_prefix_space; tokenizers 0.23 refuses a false one
                // beside a scheme that prepends (the default, always).
                if json["add_prefix_space"]?.bool == false, scheme != .never {
                    throw SchemaError("\(section): add_prefix_space false does not match prepend_scheme \"\(scheme.rawValue)\"")
                }
                return (replacement.unicodeScalars.first!, scheme)
            }
        }

        static let section = "pre_tokenizer", stepsKey = "pretokenizers"
        static let stepTypes = ["ByteLevel", "Split", "Digits", "Punctuation", "Metaspace"]

        static func step(_ type: String, _ json: JSON, section: String) throws -> PreTokenizer {
            switch type {
            case "ByteLevel":
                let useRegex = json["use_regex"]?.bool ?? true
                return .byteLevel(addPrefixSpace: try json.requiredBool("add_prefix_space", section: section),
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
                return .split(try SplitPattern.compile(pattern, section: section),
                              behavior: try SplitBehavior(json["behavior"], section: section),
                              invert: try json.requiredBool("invert", section: section))
            case "Digits":
                return .digits(individual: json["individual_digits"]?.bool ?? false)
            case "Metaspace":
                let (replacement, scheme) = try PrependScheme.metaspace(json, section: section)
                return .metaspace(replacement: replacement, prependScheme: scheme, split: json["split"]?.bool ?? true)
            default:  // Punctuation
                return .punctuation(behavior: json["behavior"] == nil ? .isolated : try SplitBehavior(json["behavior"], section: section))
            }
        }

        /// The words of a text that holds no added token. `atStart`: the text starts the input
        /// (Metaspace's "first" scheme puts its "▁" only there).
        func words(_ text: String, atStart: Bool) -> [String] {
            apply(Words(pieces: [text], firstAtStart: atStart)).pieces
        }

        /// The pieces so far; only the first can start where the input starts.
        struct Words {
            var pieces: [String]
            var firstAtStart: Bool
        }

        /// Each step splits every current piece and drops empty results, as `PreTokenizedString.split` does.
        func apply(_ words: Words) -> Words {
            switch self {
            case .byteLevel(let addPrefixSpace, let regex):
                return Self.splitEach(words) { piece in
                    // Byte test, not hasPrefix(" "): a leading space + combining mark is one Character.
                    let text = addPrefixSpace && piece.utf8.first != UInt8(ascii: " ") ? " " + piece : piece
                    guard let regex else { return ([ByteLevel.encode(text)], true) }
                    let split = regex.pieces(text, behavior: .isolated)
                    return (split.pieces.map(ByteLevel.encode), split.firstAtStart)
                }
            case .split(let pattern, let behavior, let invert):
                return Self.splitEach(words) { pattern.pieces($0, behavior: behavior, invert: invert) }
            case .digits(let individual):
                let digit = SplitPattern.character(Self.isNumeric)
                return Self.splitEach(words) { digit.pieces($0, behavior: individual ? .isolated : .contiguous) }
            case .punctuation(let behavior):
                let punctuation = SplitPattern.character(Self.isPunctuation)
                return Self.splitEach(words) { punctuation.pieces($0, behavior: behavior) }
            case .metaspace(let replacement, let scheme, let split):
                var first = true
                let firstAtStart = words.firstAtStart
                return Self.splitEach(words) { piece in
                    defer { first = false }
                    var scalars = String.UnicodeScalarView()
                    for scalar in piece.unicodeScalars { scalars.append(scalar == " " ? replacement : scalar) }
                    let prepend = scheme == .always || (scheme == .first && first && firstAtStart)
                    if prepend, scalars.first != replacement { scalars.insert(replacement, at: scalars.startIndex) }
                    let text = String(scalars)
                    guard split else { return ([text], true) }
                    return SplitPattern.character { $0 == replacement }.pieces(text, behavior: .mergedWithNext)
                }
            case .sequence(let steps):
                return steps.reduce(words) { $1.apply($0) }
            }
        }

        /// Splits every piece; the first result starts the input if the first piece did and its first
        /// part begins where that piece begins.
        private static func splitEach(_ words: Words, _ split: (String) -> (pieces: [String], firstAtStart: Bool)) -> Words {
            var result = Words(pieces: [], firstAtStart: false)
            for (index, piece) in words.pieces.enumerated() {
                let parts = split(piece)
                if result.pieces.isEmpty { result.firstAtStart = index == 0 && words.firstAtStart && parts.firstAtStart }
                result.pieces += parts.pieces
            }
            return result
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
}
