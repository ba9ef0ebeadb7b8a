import Foundation

// The post-processor stage: special tokens added around the ids (TemplateProcessing, ByteLevel).
extension Tokenizer {
    indirect enum PostProcessor: PipelineStage {
        /// Only trims offsets, which ids do not have.
        case byteLevel
        /// The "single" template: special-token ids around the sequence.
        case template([TemplatePiece])
        case sequence([PostProcessor])

        enum TemplatePiece {
            case specialTokens([Int])
            case sequence
        }

        static let section = "post_processor", stepsKey = "processors", stepTypes = ["ByteLevel", "TemplateProcessing"]

        static func step(_ type: String, _ json: JSON, section: String) throws -> PostProcessor {
            switch type {
            case "ByteLevel":
                return .byteLevel
            default:  // TemplateProcessing
                let specialTokens = json["special_tokens"]?.object ?? [:]
                return .template(try json.requiredArray("single", section: section).map { item in
                    if let name = item["SpecialToken"]?["id"]?.string {
                        guard let ids = specialTokens[name]?["ids"]?.array?.compactMap(\.int) else {
                            throw SchemaError("\(section): special token \"\(name)\" is not in \"special_tokens\"")
                        }
                        return .specialTokens(ids)
                    }
                    guard item["Sequence"] != nil else { throw SchemaError("\(section): unknown template item") }
                    return .sequence
                })
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
}
