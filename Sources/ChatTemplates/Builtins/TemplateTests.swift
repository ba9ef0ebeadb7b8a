import Foundation

// Jinja's tests (`x is defined`, `n is divisibleby 3`, ...).
extension TemplateBuiltins {
    static let testNames: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "even", "false", "filter", "float",
        "ge", ">=", "gt", "greaterthan", ">", "in", "integer", "iterable", "le", "<=", "lessthan", "lower", "lt", "<",
        "mapping", "ne", "!=", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined",
        "upper",
    ]

    static func test(_ name: String, _ value: TemplateValue, _ arguments: [TemplateValue]) throws -> Bool {
        func argument() throws -> TemplateValue {
            guard arguments.count == 1 else { throw TemplateError.runtime("test '\(name)' takes one argument (\(arguments.count) given)") }
            return arguments[0]
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .float = value { return true } else { return false }
        case "number": return value.isNumber
        case "string": return value.asString != nil
        case "mapping": if case .dict = value { return true } else { return false }
        case "iterable":
            switch value {
            case .list, .tuple, .dict, .string, .undefined: return true
            default: return false
            }
        case "sequence":  // has len() and __getitem__: Undefined and dicts count, as in Jinja
            switch value {
            case .list, .tuple, .dict, .string, .undefined: return true
            default: return false
            }
        case "callable": if case .callable = value { return true } else { return false }
        case "odd", "even":  // Jinja: value % 2 == 1 (or == 0), so floats work too
            return pythonEquals(try binary("%", value, .int(2)), .int(name == "odd" ? 1 : 0))
        case "divisibleby":
            return pythonEquals(try binary("%", value, try argument()), .int(0))
        case "eq", "equalto", "==": return pythonEquals(value, try argument())
        case "ne", "!=": return !pythonEquals(value, try argument())
        case "lt", "lessthan", "<": return try pythonCompare(value, try argument()) < 0
        case "le", "<=": return try pythonCompare(value, try argument()) <= 0
        case "gt", "greaterthan", ">": return try pythonCompare(value, try argument()) > 0
        case "ge", ">=": return try pythonCompare(value, try argument()) >= 0
        case "in": return try contains(try argument(), value)
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.null, .null), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.callable(let a), .callable(let b)): return a === b
            default: throw TemplateError.unsupported("'sameas' on \(value.typeName) values (object identity)")
            }
        case "lower", "upper":
            let text = try pythonStr(value)
            let cased = text.unicodeScalars.filter { $0.properties.isLowercase || $0.properties.isUppercase }
            guard !cased.isEmpty else { return false }
            return cased.allSatisfy { name == "lower" ? $0.properties.isLowercase : $0.properties.isUppercase }
        case "filter": return value.asString.map { filterNames.contains($0) } ?? false
        case "test": return value.asString.map { testNames.contains($0) } ?? false
        default: throw TemplateError.unsupported("test \"\(name)\"")
        }
    }
}
