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

        func apply(_ text: String) -> String { applyKeepingStart(text).text }

        /// The normalized text, and whether its first character still comes from the input's first:
        /// Strip, or a Replace with empty content, that removes the start moves it. `tokenizers` tracks
        /// this in its offsets, and Metaspace's "first" scheme prepends only at offset 0.
        func applyKeepingStart(_ text: String) -> (text: String, keptStart: Bool) {
            switch self {
            case .nfc:
                return (text.precomposedStringWithCanonicalMapping, true)
            case .prepend(let prefix):
                return (text.isEmpty ? text : prefix + text, true)
            case .replace(let pattern, let content):
                return (pattern.replace(text, with: content), !content.isEmpty || !pattern.matchesAtStart(text))
            case .strip(let left, let right):
                var scalars = Substring(text).unicodeScalars
                if left { scalars = scalars.drop { $0.properties.isWhitespace } }
                if right { while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() } }
                return (String(scalars), scalars.startIndex == text.unicodeScalars.startIndex)
            case .sequence(let steps):
                return steps.reduce((text, true)) { done, step in
                    let next = step.applyKeepingStart(done.text)
                    return (next.text, done.keptStart && next.keptStart)
                }
            }
        }
    }
}
