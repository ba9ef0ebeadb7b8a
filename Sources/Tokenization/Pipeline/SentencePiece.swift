import Foundation

// What SentencePiece-style BPE tokenizers (Llama 2, Mistral, Phi-3) need besides their stages:
// the byte tokens of byte_fallback, and literal or regex replacement over Unicode scalars.
extension Tokenizer {
    /// `<0xXX>` tokens: a byte the vocab has no character token for (BPE `byte_fallback`).
    enum ByteFallback {
        /// The token of `byte`, as `tokenizers` formats it (`format!("<{b:#04X}>")`: "<0x0A>").
        static func tokenName(_ byte: UInt8) -> String {
            let hex = Array("0123456789ABCDEF".utf8)
            return String(decoding: Array("<0x".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 15)], UInt8(ascii: ">")], as: UTF8.self)
        }

        /// The byte of a `<0xXX>` token: six bytes, parsed as Rust's `u8::from_str_radix(_, 16)` parses
        /// the two in the middle (either case, or "+" and one digit).
        static func byte(of token: String) -> UInt8? {
            let utf8 = token.utf8
            guard utf8.count == 6, token.hasPrefix("<0x"), utf8.last == UInt8(ascii: ">") else { return nil }
            let digits = Array(utf8.dropFirst(3).prefix(2))
            func value(_ digit: UInt8) -> UInt8? {
                switch digit {
                case UInt8(ascii: "0") ... UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
                case UInt8(ascii: "a") ... UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A") ... UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
                default: return nil
                }
            }
            if digits[0] == UInt8(ascii: "+") { return value(digits[1]) }
            guard let high = value(digits[0]), let low = value(digits[1]) else { return nil }
            return high << 4 | low
        }
    }

    /// The pattern of a Replace normalizer or decoder: a literal string or a regex.
    enum ReplacePattern {
        case literal([UInt8])
        case regex(NSRegularExpression)

        init(_ json: JSON, section: String) throws {
            if let literal = json["pattern"]?["String"]?.string {
                guard !literal.isEmpty else { throw SchemaError("\(section): empty \"pattern\"") }
                self = .literal(Array(literal.utf8))
            } else if let regex = json["pattern"]?["Regex"]?.string {
                self = .regex(try SplitPattern.regex(regex, section: section))
            } else {
                throw SchemaError("\(section): \"pattern\" must be {\"Regex\": ...} or {\"String\": ...}")
            }
        }

        /// Whether a non-empty match starts the text.
        func matchesAtStart(_ text: String) -> Bool {
            switch self {
            case .literal(let pattern):
                return text.utf8.starts(with: pattern)
            case .regex(let regex):
                guard let match = regex.firstMatch(in: text, range: NSRange(location: 0, length: text.utf16.count)) else { return false }
                return match.range.location == 0 && match.range.length > 0
            }
        }

        /// Every non-overlapping occurrence, leftmost first, replaced by `content`. A literal is
        /// compared byte for byte: Swift's String comparison would match canonical equivalents.
        func replace(_ text: String, with content: String) -> String {
            switch self {
            case .literal(let pattern):
                let bytes = Array(text.utf8)
                guard bytes.count >= pattern.count else { return text }
                var out: [UInt8] = []
                out.reserveCapacity(bytes.count)
                var index = 0
                var replaced = false
                while index < bytes.count {
                    if bytes[index] == pattern[0], index + pattern.count <= bytes.count,
                       bytes[index ..< index + pattern.count].elementsEqual(pattern) {
                        out.append(contentsOf: content.utf8)
                        index += pattern.count
                        replaced = true
                    } else {
                        out.append(bytes[index])
                        index += 1
                    }
                }
                return replaced ? String(decoding: out, as: UTF8.self) : text
            case .regex(let regex):
                return regex.stringByReplacingMatches(in: text, range: NSRange(location: 0, length: text.utf16.count),
                                                      withTemplate: NSRegularExpression.escapedTemplate(for: content))
            }
        }
    }
}
