import Foundation

// The normalizer stage of tokenizer.json: text → text before anything is split.
extension Tokenizer {
    indirect enum Normalizer: PipelineStage {
        /// Unicode canonical composition (Qwen2's tokenizers normalize so).
        case nfc
        /// A string put before any non-empty text (SentencePiece's "▁" word start, as Llama 2's file).
        case prepend(String)
        case replace(ReplacePattern, content: String)
        /// Removes leading and/or trailing whitespace (Unicode White_Space, as Rust's `char::is_whitespace`).
        case strip(left: Bool, right: Bool)
        case sequence([Normalizer])

        static let section = "normalizer", stepsKey = "normalizers", stepTypes = ["NFC", "Prepend", "Replace", "Strip"]

        static func step(_ type: String, _ json: JSON, section: String) throws -> Normalizer {
            switch type {
            case "Prepend":
                guard let prepend = json["prepend"]?.string else { throw SchemaError("\(section): missing string \"prepend\"") }
                return .prepend(prepend)
            case "Replace":
                guard let content = json["content"]?.string else { throw SchemaError("\(section): missing string \"content\"") }
                return .replace(try ReplacePattern(json, section: section), content: content)
            case "Strip":
                return .strip(left: try json.requiredBool("strip_left", section: section),
                              right: try json.requiredBool("strip_right", section: section))
            default:  // NFC
                return .nfc
            }
        }

        func apply(_ text: String) -> String {
            switch self {
            case .nfc: return text.precomposedStringWithCanonicalMapping
            case .prepend(let prefix): return text.isEmpty ? text : prefix + text
            case .replace(let pattern, let content): return pattern.replace(text, with: content)
            case .strip(let left, let right):
                var scalars = Substring(text).unicodeScalars
                if left { scalars = scalars.drop { $0.properties.isWhitespace } }
                if right { while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() } }
                return String(scalars)
            case .sequence(let steps): return steps.reduce(text) { $1.apply($0) }
            }
        }
    }
}
