import Foundation

// The decoder stage: ids → text.
extension Tokenizer {
    indirect enum TokenDecoder: PipelineStage {
        case byteLevel
        case sequence([TokenDecoder])

        static let section = "decoder", stepsKey = "decoders", stepTypes = ["ByteLevel"]
        static func step(_ type: String, _ json: JSON, section: String) throws -> TokenDecoder { .byteLevel }

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
