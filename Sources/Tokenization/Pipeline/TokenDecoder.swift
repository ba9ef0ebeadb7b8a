import Foundation

// The decoder stage: ids → text.
extension Tokenizer {
    indirect enum TokenDecoder: PipelineStage {
        case byteLevel
        case replace(ReplacePattern, content: String)
        /// Runs of `<0xXX>` tokens become the text of their bytes (U+FFFD per token if not UTF-8).
        case byteFallback
        /// All tokens joined into one.
        case fuse
        /// Up to `start` leading and `stop` trailing `content` characters cut off each token.
        case strip(content: Unicode.Scalar, start: Int, stop: Int)
        /// `replacement` back to a space; in the first token (unless the scheme is never) every
        /// `replacement` is dropped, as `tokenizers` does.
        case metaspace(replacement: Unicode.Scalar, prependScheme: PreTokenizer.PrependScheme)
        case sequence([TokenDecoder])

        static let section = "decoder", stepsKey = "decoders"
        static let stepTypes = ["ByteLevel", "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace"]

        static func step(_ type: String, _ json: JSON, section: String) throws -> TokenDecoder {
            switch type {
            case "Replace":
                guard let content = json["content"]?.string else { throw SchemaError("\(section): missing string \"content\"") }
                return .replace(try ReplacePattern(json, section: section), content: content)
            case "ByteFallback":
                return .byteFallback
            case "Fuse":
                return .fuse
            case "Metaspace":
                let (replacement, scheme) = try PreTokenizer.PrependScheme.metaspace(json, section: section)
                return .metaspace(replacement: replacement, prependScheme: scheme)
            case "Strip":
                guard let content = json["content"]?.string, content.unicodeScalars.count == 1,
                      let start = json["start"]?.int, let stop = json["stop"]?.int, start >= 0, stop >= 0 else {
                    throw SchemaError("\(section): needs one character \"content\" and counts \"start\" and \"stop\"")
                }
                return .strip(content: content.unicodeScalars.first!, start: start, stop: stop)
            default:  // ByteLevel
                return .byteLevel
            }
        }

        /// `tokenizers`' decode_chain: tokens in, tokens out; the caller joins the result.
        func decodeChain(_ tokens: [String]) -> [String] {
            switch self {
            case .byteLevel:
                // One string for all tokens: a character's bytes may be split across tokens.
                // Invalid UTF-8 becomes U+FFFD per maximal invalid subpart, as Rust's from_utf8_lossy.
                return [String(decoding: tokens.flatMap(ByteLevel.decode), as: UTF8.self)]
            case .replace(let pattern, let content):
                return tokens.map { pattern.replace($0, with: content) }
            case .byteFallback:
                var decoded: [String] = []
                decoded.reserveCapacity(tokens.count)
                var pendingBytes: [UInt8] = []
                func flush() {
                    guard !pendingBytes.isEmpty else { return }
                    // Valid UTF-8 as a whole, or one replacement character per byte token (not per invalid subpart).
                    if let text = String(bytes: pendingBytes, encoding: .utf8) {
                        decoded.append(text)
                    } else {
                        decoded += Array(repeating: "\u{FFFD}", count: pendingBytes.count)
                    }
                    pendingBytes.removeAll(keepingCapacity: true)
                }
                for token in tokens {
                    if let byte = ByteFallback.byte(of: token) {
                        pendingBytes.append(byte)
                    } else {
                        flush()
                        decoded.append(token)
                    }
                }
                flush()
                return decoded
            case .fuse:
                return [tokens.joined()]
            case .strip(let content, let start, let stop):
                return tokens.map { token in
                    let scalars = Array(token.unicodeScalars)
                    let leading = scalars.prefix(start).prefix { $0 == content }.count
                    let trailing = scalars.dropFirst(leading).reversed().prefix(stop).prefix { $0 == content }.count
                    var kept = String.UnicodeScalarView()
                    kept.append(contentsOf: scalars[leading ..< scalars.count - trailing])
                    return String(kept)
                }
            case .metaspace(let replacement, let scheme):
                return tokens.enumerated().map { index, token in
                    var scalars = String.UnicodeScalarView()
                    for scalar in token.unicodeScalars {
                        if scalar != replacement {
                            scalars.append(scalar)
                        } else if index > 0 || scheme == .never {
                            scalars.append(" ")
                        }
                    }
                    return String(scalars)
                }
            case .sequence(let steps):
                return steps.reduce(tokens) { $1.decodeChain($0) }
            }
        }
    }
}
