import Foundation

// Template values with the semantics Jinja inherits from Python: truthiness, `==`, ordering, `str()`,
// `repr()` and `json.dumps`. Strings are compared, measured and sliced by Unicode scalar (Python's
// code points), never by Swift's grapheme clusters or canonical equivalence.

indirect enum TemplateValue {
    /// Jinja's default `Undefined`: falsy, renders as "", iterates as empty; attribute access,
    /// arithmetic and calls on it fail. `name` says what was missing, for error messages.
    case undefined(String)
    /// Python's None (named null so it never reads as Optional.none).
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([TemplateValue])
    case tuple([TemplateValue])
    case dict(TemplateDict)
    case namespace(TemplateNamespace)
    case callable(TemplateCallable)
    case loop(TemplateLoop)

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    var isNone: Bool { if case .null = self { return true } else { return false } }

    /// Python's name of the value's type, for error messages that read like Jinja's.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .null: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        case .loop: return "LoopContext"
        }
    }

    /// Python's `bool(x)`.
    var isTruthy: Bool {
        switch self {
        case .undefined, .null: return false
        case .bool(let value): return value
        case .int(let value): return value != 0
        case .float(let value): return value != 0
        case .string(let value): return !value.isEmpty
        case .list(let items), .tuple(let items): return !items.isEmpty
        case .dict(let dict): return !dict.isEmpty
        case .namespace, .callable, .loop: return true
        }
    }

    /// Numbers as Python sees them: bool is an int.
    var asInt: Int? {
        switch self {
        case .int(let value): return value
        case .bool(let value): return value ? 1 : 0
        default: return nil
        }
    }

    var asDouble: Double? {
        switch self {
        case .float(let value): return value
        case .int(let value): return Double(value)
        case .bool(let value): return value ? 1 : 0
        default: return nil
        }
    }

    var isNumber: Bool { asDouble != nil }

    var asString: String? { if case .string(let value) = self { return value } else { return nil } }
}

// MARK: - Converting Swift values

extension TemplateValue {
    init(_ value: ChatTemplateValue) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .double(let number): self = .float(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .list(items.map(TemplateValue.init))
        case .object(let entries): self = .dict(TemplateDict(entries.map { ($0.key, TemplateValue($0.value)) }))
        }
    }

    /// Converts what callers put in `variables`.
    init(swiftValue value: Any) throws {
        // An Optional inside Any: nil is None, anything else is unwrapped.
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let wrapped = mirror.children.first?.value else { self = .null; return }
            self = try TemplateValue(swiftValue: wrapped)
            return
        }
        switch value {
        case let value as ChatTemplateValue: self = TemplateValue(value)
        case is NSNull: self = .null
        case let text as String: self = .string(text)
        case let text as Substring: self = .string(String(text))
        case let number as NSNumber where !(value is Bool) && !(value is Int) && !(value is Double):
            // Foundation numbers (e.g. from JSONSerialization): the type code says bool, float or int.
            switch String(cString: number.objCType) {
            case "c", "B": self = .bool(number.boolValue)
            case "d", "f": self = .float(number.doubleValue)
            default: self = .int(number.intValue)
            }
        case let flag as Bool: self = .bool(flag)
        case let number as Int: self = .int(number)
        case let number as any BinaryInteger:
            guard let exact = Int(exactly: number) else { throw TemplateError.runtime("integer \(number) does not fit in Int") }
            self = .int(exact)
        case let number as Double: self = .float(number)
        case let number as Float: self = .float(Double(number))
        case let items as [Any]: self = .list(try items.map { try TemplateValue(swiftValue: $0) })
        case let dict as [String: Any]:
            // A Swift dictionary has no order; sort the keys so renders are at least reproducible.
            self = .dict(TemplateDict(try dict.keys.sorted().map { ($0, try TemplateValue(swiftValue: dict[$0]!)) }))
        default:
            throw TemplateError.runtime("unsupported value type \(type(of: value)); use String, Bool, Int, Double, arrays, dictionaries or ChatTemplateValue")
        }
    }
}
