import Foundation

// The normalizer stage of tokenizer.json: text → text before anything is split.
extension Tokenizer {
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
}
