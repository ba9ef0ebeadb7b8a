import Foundation

// The normalizer stage of tokenizer.json: text → text before anything is split.
extension Tokenizer {
    indirect enum Normalizer: PipelineStage {
        /// Unicode canonical composition (Qwen2's tokenizers normalize so).
        case nfc
        case sequence([Normalizer])

        static let section = "normalizer", stepsKey = "normalizers", stepTypes = ["NFC"]
        static func step(_ type: String, _ json: JSON, section: String) throws -> Normalizer { .nfc }

        func apply(_ text: String) -> String {
            switch self {
            case .nfc: return text.precomposedStringWithCanonicalMapping
            case .sequence(let steps): return steps.reduce(text) { $1.apply($0) }
            }
        }
    }
}
