import DPOSupport
import Foundation

/// The token ids a model has embedding rows for: 0..<vocab_size. Data is checked against it when it
/// is tokenized, so a tokenizer that does not match the model (an added token past the model's
/// vocabulary, say) stops the run with the row named instead of reading past the embedding table.
public struct ModelVocabulary: Sendable {
    public let size: Int

    public init(size: Int) { self.size = size }

    /// Throws `SOURCE: ...` for the first id outside the vocabulary.
    public func check(_ ids: [Int], at source: String) throws {
        guard let bad = ids.first(where: { $0 < 0 || $0 >= size }) else { return }
        throw DPOError("\(source): token id \(bad) is outside the model's vocabulary (vocab_size \(size)); the tokenizer does not match the model")
    }
}
