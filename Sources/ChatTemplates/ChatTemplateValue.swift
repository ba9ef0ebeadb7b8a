import DPOSupport
import Foundation

/// A JSON-like value for template variables whose key order matters (`tools | tojson` prints keys in
/// insertion order, as Python dicts keep them; a Swift `[String: Any]` has no order, so its keys are
/// sorted instead). `ChatTemplateValue(json:)` parses JSON text keeping the order of object keys.
public enum ChatTemplateValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ChatTemplateValue])
    case object([ObjectEntry])

    public struct ObjectEntry: Equatable, Sendable {
        public var key: String
        public var value: ChatTemplateValue
        public init(_ key: String, _ value: ChatTemplateValue) {
            self.key = key
            self.value = value
        }
    }

    /// Parses JSON text; object keys keep their order, integers without fraction or exponent stay `.int`.
    public init(json: String) throws {
        self.init(try OrderedJSON(parsing: Array(json.utf8)))
    }

    init(_ json: OrderedJSON) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(ChatTemplateValue.init))
        case .object(let members): self = .object(members.map { ObjectEntry($0.key, ChatTemplateValue($0.value)) })
        }
    }

    /// The member `key` of an object (first match), nil otherwise.
    public subscript(key: String) -> ChatTemplateValue? {
        if case .object(let entries) = self { return entries.first { $0.key == key }?.value }
        return nil
    }
}
