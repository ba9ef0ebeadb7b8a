import Foundation

// The pre-tokenizer stage: text → the words the BPE model sees.
extension Tokenizer {
    indirect enum PreTokenizer: PipelineStage {
        case byteLevel(addPrefixSpace: Bool, regex: SplitPattern?)
        case split(SplitPattern, behavior: SplitBehavior, invert: Bool)
        case digits(individual: Bool)
        case punctuation(behavior: SplitBehavior)
        case sequence([PreTokenizer])

        static let section = "pre_tokenizer", stepsKey = "pretokenizers"
        static let stepTypes = ["ByteLevel", "Split", "Digits", "Punctuation"]

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
            default:  // Punctuation
                return .punctuation(behavior: json["behavior"] == nil ? .isolated : try SplitBehavior(json["behavior"], section: section))
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
}
