import Foundation

// Jinja's binary operators, comparisons, `in` and iteration, with Python's semantics.
extension TemplateBuiltins {
    // Operators

    static func binary(_ op: String, _ left: TemplateValue, _ right: TemplateValue) throws -> TemplateValue {
        if op == "~" { return .string(try pythonStr(left) + pythonStr(right)) }
        if case .undefined(let what) = left { throw TemplateError.runtime(what) }
        if case .undefined(let what) = right { throw TemplateError.runtime(what) }
        func unsupported() -> TemplateError {
            .runtime("unsupported operand type(s) for \(op): '\(left.typeName)' and '\(right.typeName)'")
        }
        // Integer arithmetic stays exact; overflow (Python would grow the int) is refused.
        if let a = left.asInt, let b = right.asInt {
            func checked(_ result: (Int, Bool)) throws -> TemplateValue {
                guard !result.1 else { throw TemplateError.unsupported("integer arithmetic beyond 64 bits") }
                return .int(result.0)
            }
            switch op {
            case "+": return try checked(a.addingReportingOverflow(b))
            case "-": return try checked(a.subtractingReportingOverflow(b))
            case "*": return try checked(a.multipliedReportingOverflow(by: b))
            case "/":
                guard b != 0 else { throw TemplateError.runtime("division by zero") }
                return .float(Double(a) / Double(b))
            case "//":
                guard b != 0 else { throw TemplateError.runtime("integer division or modulo by zero") }
                let quotient = a / b
                return .int((a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient)
            case "%":
                guard b != 0 else { throw TemplateError.runtime("integer division or modulo by zero") }
                let remainder = a % b
                return .int(remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder)
            case "**":
                if b < 0 {
                    guard a != 0 else { throw TemplateError.runtime("0.0 cannot be raised to a negative power") }
                    return .float(pow(Double(a), Double(b)))
                }
                var result = 1
                for _ in 0..<b { result = try checked(result.multipliedReportingOverflow(by: a)).asInt! }
                return .int(result)
            default: throw unsupported()
            }
        }
        if let a = left.asDouble, let b = right.asDouble {
            switch op {
            case "+": return .float(a + b)
            case "-": return .float(a - b)
            case "*": return .float(a * b)
            case "/":
                guard b != 0 else { throw TemplateError.runtime("float division by zero") }
                return .float(a / b)
            case "//":
                guard b != 0 else { throw TemplateError.runtime("float floor division by zero") }
                return .float((a / b).rounded(.down))
            case "%":
                guard b != 0 else { throw TemplateError.runtime("float modulo") }
                let remainder = fmod(a, b)
                return .float(remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder)
            case "**":
                guard !(a == 0 && b < 0) else { throw TemplateError.runtime("0.0 cannot be raised to a negative power") }
                guard !(a < 0 && b.rounded() != b) else { throw TemplateError.unsupported("a negative number to a fractional power (complex result)") }
                let result = pow(a, b)
                guard result.isFinite || !a.isFinite || !b.isFinite else { throw TemplateError.runtime("numerical result out of range") }
                return .float(result)
            default: throw unsupported()
            }
        }
        switch (op, left, right) {
        case ("+", .string(let a), .string(let b)): return .string(a + b)
        case ("+", .list(let a), .list(let b)): return .list(a + b)
        case ("+", .tuple(let a), .tuple(let b)): return .tuple(a + b)
        case ("*", .string(let text), _), ("*", _, .string(let text)):
            guard let count = (left.asString == nil ? left : right).asInt else { throw unsupported() }
            return .string(String(repeating: text, count: Swift.max(0, count)))
        case ("*", .list(let items), _), ("*", _, .list(let items)):
            guard let count = (left.isListLike ? right : left).asInt else { throw unsupported() }
            return .list(Array(Array(repeating: items, count: Swift.max(0, count)).joined()))
        case ("%", .string, _):
            throw TemplateError.unsupported("printf-style string formatting with %")
        case ("+", .string, _):
            throw TemplateError.runtime("can only concatenate str (not \"\(right.typeName)\") to str")
        default:
            throw unsupported()
        }
    }

    static func compare(_ op: String, _ left: TemplateValue, _ right: TemplateValue) throws -> Bool {
        switch op {
        case "==": return pythonEquals(left, right)
        case "!=": return !pythonEquals(left, right)
        case "<": return try pythonCompare(left, right) < 0
        case "<=": return try pythonCompare(left, right) <= 0
        case ">": return try pythonCompare(left, right) > 0
        case ">=": return try pythonCompare(left, right) >= 0
        case "in": return try contains(right, left)
        case "notin": return !(try contains(right, left))
        default: throw TemplateError.unsupported("operator \(op)")
        }
    }

    /// Python `item in container`.
    static func contains(_ container: TemplateValue, _ item: TemplateValue) throws -> Bool {
        switch container {
        case .string(let text):
            guard case .string(let needle) = item else {
                if case .undefined(let what) = item { throw TemplateError.runtime(what) }
                throw TemplateError.runtime("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return findScalars(Array(needle.unicodeScalars), in: Array(text.unicodeScalars), from: 0) != nil
        case .list(let items), .tuple(let items):
            return items.contains { pythonEquals($0, item) }
        case .dict(let dict):
            return try dict.get(item) != nil
        case .undefined:
            return false  // Undefined iterates as empty
        default:
            throw TemplateError.runtime("argument of type '\(container.typeName)' is not iterable")
        }
    }

    static func iterate(_ value: TemplateValue) throws -> [TemplateValue] {
        switch value {
        case .list(let items), .tuple(let items): return items
        case .dict(let dict): return dict.keys
        case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw TemplateError.runtime("'\(value.typeName)' object is not iterable")
        }
    }
}

extension TemplateValue {
    var isListLike: Bool { if case .list = self { return true } else { return false } }
}
