import Foundation

extension Tokenizer {
    /// A stage of tokenizer.json (normalizer, pre-tokenizer, post-processor, decoder): one step named
    /// by its "type", or a "Sequence" of steps. Each stage says which step types it knows; anything
    /// else is refused when the file loads, naming the stage and the type.
    protocol PipelineStage {
        /// The stage's key in tokenizer.json, e.g. "normalizer".
        static var section: String { get }
        /// The key of a Sequence's list of steps, e.g. "normalizers".
        static var stepsKey: String { get }
        /// The step types besides Sequence, in the order error messages list them.
        static var stepTypes: [String] { get }
        static func sequence(_ steps: [Self]) -> Self
        /// One step of a type from `stepTypes`; `section` names it in errors ("pre_tokenizer Split").
        static func step(_ type: String, _ json: JSON, section: String) throws -> Self
    }
}

extension Tokenizer.PipelineStage {
    static func parse(_ json: Tokenizer.JSON) throws -> Self {
        let type = try json.typeName(section: section)
        if type == "Sequence" {
            return sequence(try json.requiredArray(stepsKey, section: "\(section) Sequence").map(parse))
        }
        guard stepTypes.contains(type) else {
            throw Tokenizer.SchemaError("\(section): unsupported type \"\(type)\" (supported: \((stepTypes + ["Sequence"]).joined(separator: ", ")))")
        }
        return try step(type, json, section: "\(section) \(type)")
    }
}
