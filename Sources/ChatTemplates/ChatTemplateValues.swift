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

// MARK: - Containers and objects

/// A Python dict: insertion-ordered, keyed by hashable scalars (str, int, float, bool, None, tuples).
struct TemplateDict {
    private(set) var keys: [TemplateValue] = []
    private(set) var values: [TemplateValue] = []
    private var index: [HashKey: Int] = [:]

    init() {}

    init(_ entries: [(String, TemplateValue)]) {
        for (key, value) in entries { try! set(.string(key), value) }
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var items: [(TemplateValue, TemplateValue)] { Array(zip(keys, values)) }

    func get(_ key: TemplateValue) throws -> TemplateValue? {
        guard let position = index[try HashKey(key)] else { return nil }
        return values[position]
    }

    func get(_ key: String) -> TemplateValue? {
        index[.string(key)].map { values[$0] }
    }

    mutating func set(_ key: TemplateValue, _ value: TemplateValue) throws {
        let hash = try HashKey(key)
        if let position = index[hash] {
            values[position] = value
        } else {
            index[hash] = keys.count
            keys.append(key)
            values.append(value)
        }
    }

    /// Python hashing: 1, 1.0 and True are the same key; lists and dicts are unhashable.
    enum HashKey: Hashable {
        case null
        case int(Int)
        case float(Double)
        case string(String)
        case tuple([HashKey])

        init(_ value: TemplateValue) throws {
            switch value {
            case .null: self = .null
            case .bool(let flag): self = .int(flag ? 1 : 0)
            case .int(let number): self = .int(number)
            case .float(let number):
                if number.rounded() == number, let whole = Int(exactly: number) { self = .int(whole) } else { self = .float(number) }
            case .string(let text): self = .string(text)
            case .tuple(let items): self = .tuple(try items.map(HashKey.init))
            default: throw TemplateError.runtime("unhashable type: '\(value.typeName)'")
            }
        }
    }
}

/// `namespace(...)`: the one mutable object templates have, so it is a reference.
final class TemplateNamespace {
    var attributes = TemplateDict()
}

/// A built-in function, bound method or macro.
final class TemplateCallable {
    let name: String
    let body: (TemplateArguments) throws -> TemplateValue
    init(_ name: String, _ body: @escaping (TemplateArguments) throws -> TemplateValue) {
        self.name = name
        self.body = body
    }
}

/// Evaluated call arguments: positional then keyword, as Python passes them.
struct TemplateArguments {
    var positional: [TemplateValue] = []
    var keyword: [(String, TemplateValue)] = []

    /// Binds the arguments to a Python signature: parameter names with defaults (nil = required).
    /// Throws on too many, unknown or missing arguments, like Python would.
    func bind(_ function: String, _ parameters: [(String, TemplateValue?)]) throws -> [TemplateValue] {
        guard positional.count <= parameters.count else {
            throw TemplateError.runtime("\(function)() takes at most \(parameters.count) arguments (\(positional.count) given)")
        }
        var bound: [TemplateValue?] = parameters.map { $0.1 }
        var given = Array(repeating: false, count: parameters.count)
        for (position, value) in positional.enumerated() {
            bound[position] = value
            given[position] = true
        }
        for (name, value) in keyword {
            guard let position = parameters.firstIndex(where: { $0.0 == name }) else {
                throw TemplateError.runtime("\(function)() got an unexpected keyword argument '\(name)'")
            }
            guard !given[position] else { throw TemplateError.runtime("\(function)() got multiple values for argument '\(name)'") }
            bound[position] = value
            given[position] = true
        }
        return try bound.enumerated().map { position, value in
            guard let value else { throw TemplateError.runtime("\(function)() missing required argument '\(parameters[position].0)'") }
            return value
        }
    }
}

/// The `loop` variable of a for loop.
final class TemplateLoop {
    let items: [TemplateValue]
    var index0 = 0
    let depth0: Int
    init(items: [TemplateValue], depth0: Int) {
        self.items = items
        self.depth0 = depth0
    }

    func attribute(_ name: String) -> TemplateValue? {
        let length = items.count
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(length - index0)
        case "revindex0": return .int(length - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(depth0 + 1)
        case "depth0": return .int(depth0)
        case "previtem": return index0 > 0 ? items[index0 - 1] : .undefined("there is no previous item")
        case "nextitem": return index0 + 1 < length ? items[index0 + 1] : .undefined("there is no next item")
        case "cycle":
            return .callable(TemplateCallable("loop.cycle") { [unowned self] arguments in
                guard !arguments.positional.isEmpty else { throw TemplateError.runtime("no items for cycling given") }
                return arguments.positional[self.index0 % arguments.positional.count]
            })
        default: return nil
        }
    }
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

// MARK: - Python semantics

/// Python's `str.isspace()` set, which `strip()`, `split()` and Jinja's whitespace control use.
func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

/// Python `a == b`.
func pythonEquals(_ a: TemplateValue, _ b: TemplateValue) -> Bool {
    switch (a, b) {
    case (.undefined, .undefined), (.null, .null): return true
    case (.undefined, _), (_, .undefined), (.null, _), (_, .null): return false
    case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { pythonEquals($0, $1) }
    case (.dict(let x), .dict(let y)):
        guard x.count == y.count else { return false }
        for (key, value) in x.items {
            guard let other = try? y.get(key), pythonEquals(value, other) else { return false }
        }
        return true
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.callable(let x), .callable(let y)): return x === y
    case (.loop(let x), .loop(let y)): return x === y
    default:
        if let x = a.asInt, let y = b.asInt { return x == y }
        if let x = a.asDouble, let y = b.asDouble { return x == y }
        return false
    }
}

/// Python `a < b` as -1/0/1; throws TypeError for types Python cannot order.
func pythonCompare(_ a: TemplateValue, _ b: TemplateValue) throws -> Int {
    switch (a, b) {
    case (.string(let x), .string(let y)):
        let (xs, ys) = (Array(x.unicodeScalars), Array(y.unicodeScalars))
        for (p, q) in zip(xs, ys) where p != q { return p.value < q.value ? -1 : 1 }
        return xs.count == ys.count ? 0 : (xs.count < ys.count ? -1 : 1)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        for (p, q) in zip(x, y) where !pythonEquals(p, q) { return try pythonCompare(p, q) }
        return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
    default:
        if let x = a.asInt, let y = b.asInt { return x == y ? 0 : (x < y ? -1 : 1) }
        if let x = a.asDouble, let y = b.asDouble { return x == y ? 0 : (x < y ? -1 : 1) }
        if a.isUndefined || b.isUndefined { throw TemplateError.runtime("cannot compare an undefined value") }
        throw TemplateError.runtime("'<' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
    }
}

/// Python `repr(float)`: the shortest digits that round-trip (Swift's `description` finds the same
/// ones), laid out positionally for decimal exponents -4 ..< 16 and as `1.5e+16` otherwise.
func pythonFloatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    var text = Substring(String(describing: abs(value)))
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...])!
        text = text[..<e]
    }
    // text is now "123.456", "0.00012" or "5": collect the digits and where the point sits.
    let point = text.firstIndex(of: ".").map { text.distance(from: text.startIndex, to: $0) } ?? text.count
    var digits = Array(text.filter { $0 != "." })
    var pointPosition = point + exponent  // value = 0.d1d2... × 10^pointPosition
    while digits.first == "0" { digits.removeFirst(); pointPosition -= 1 }
    while digits.last == "0" { digits.removeLast() }
    if digits.isEmpty { digits = ["0"] }
    let decimalExponent = pointPosition - 1  // value = d1.d2... × 10^decimalExponent
    let sign = value < 0 ? "-" : ""
    if decimalExponent >= -4 && decimalExponent < 16 {
        if decimalExponent >= 0 {
            let whole = digits.count > decimalExponent + 1 ? String(digits[...decimalExponent])
                : String(digits) + String(repeating: "0", count: decimalExponent + 1 - digits.count)
            let fraction = digits.count > decimalExponent + 1 ? String(digits[(decimalExponent + 1)...]) : "0"
            return sign + whole + "." + fraction
        }
        return sign + "0." + String(repeating: "0", count: -decimalExponent - 1) + String(digits)
    }
    let mantissa = digits.count > 1 ? String(digits[0]) + "." + String(digits[1...]) : String(digits[0])
    let magnitude = abs(decimalExponent)
    return sign + mantissa + "e" + (decimalExponent < 0 ? "-" : "+") + (magnitude < 10 ? "0" : "") + String(magnitude)
}

/// Python `str(x)`, which `{{ x }}`, `~`, `|string` and `|join` use.
func pythonStr(_ value: TemplateValue) throws -> String {
    switch value {
    case .undefined: return ""
    case .string(let text): return text
    case .callable(let function): throw TemplateError.unsupported("rendering the function \(function.name) itself")
    case .loop: throw TemplateError.unsupported("rendering the loop object itself")
    default: return try pythonRepr(value)
    }
}

/// Python `repr(x)`: quotes and escapes strings, `[...]`, `(...)`, `{...}` with `, ` and `: `.
func pythonRepr(_ value: TemplateValue) throws -> String {
    switch value {
    case .undefined: return ""
    case .null: return "None"
    case .bool(let flag): return flag ? "True" : "False"
    case .int(let number): return String(number)
    case .float(let number): return pythonFloatRepr(number)
    case .string(let text): return pythonStringRepr(text)
    case .list(let items): return "[" + (try items.map(pythonRepr)).joined(separator: ", ") + "]"
    case .tuple(let items):
        if items.count == 1 { return "(" + (try pythonRepr(items[0])) + ",)" }
        return "(" + (try items.map(pythonRepr)).joined(separator: ", ") + ")"
    case .dict(let dict):
        return "{" + (try dict.items.map { try pythonRepr($0.0) + ": " + pythonRepr($0.1) }).joined(separator: ", ") + "}"
    case .namespace(let namespace): return "<Namespace " + (try pythonRepr(.dict(namespace.attributes))) + ">"
    case .callable(let function): throw TemplateError.unsupported("rendering the function \(function.name) itself")
    case .loop: throw TemplateError.unsupported("rendering the loop object itself")
    }
}

/// Python's `repr(str)`: single quotes unless the text has a ' and no ", non-printables escaped.
func pythonStringRepr(_ text: String) -> String {
    let quote: Unicode.Scalar = text.unicodeScalars.contains("'") && !text.unicodeScalars.contains("\"") ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for scalar in text.unicodeScalars {
        switch scalar {
        case quote, "\\": out.append("\\"); out.append(scalar)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        default:
            if isPythonPrintable(scalar) {
                out.append(scalar)
            } else if scalar.value < 0x100 {
                out.append(contentsOf: String(format: "\\x%02x", scalar.value).unicodeScalars)
            } else if scalar.value < 0x10000 {
                out.append(contentsOf: String(format: "\\u%04x", scalar.value).unicodeScalars)
            } else {
                out.append(contentsOf: String(format: "\\U%08x", scalar.value).unicodeScalars)
            }
        }
    }
    out.append(quote)
    return String(out)
}

/// Python's `str.isprintable()` for one character: not in categories Cc, Cf, Cs, Co, Cn, Zl, Zp,
/// and not a separator other than the ASCII space.
func isPythonPrintable(_ scalar: Unicode.Scalar) -> Bool {
    if scalar == " " { return true }
    switch scalar.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}

/// transformers' `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
struct PythonJSON {
    var ensureASCII = false
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    func dumps(_ value: TemplateValue) throws -> String {
        var out = ""
        try write(value, into: &out, level: 0)
        return out
    }

    private func write(_ value: TemplateValue, into out: inout String, level: Int) throws {
        switch value {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .int(let number): out += String(number)
        case .float(let number):
            if number.isNaN { out += "NaN" } else if number.isInfinite { out += number < 0 ? "-Infinity" : "Infinity" } else { out += pythonFloatRepr(number) }
        case .string(let text): out += quote(text)
        case .list(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (position, item) in items.enumerated() {
                if position > 0 { out += itemSeparator }
                newline(&out, level + 1)
                try write(item, into: &out, level: level + 1)
            }
            newline(&out, level)
            out += "]"
        case .dict(let dict):
            if dict.isEmpty { out += "{}"; return }
            var entries = try dict.items.map { (try keyString($0.0), $0.1) }
            if sortKeys { entries.sort { try! pythonCompare(.string($0.0), .string($1.0)) < 0 } }
            out += "{"
            for (position, entry) in entries.enumerated() {
                if position > 0 { out += itemSeparator }
                newline(&out, level + 1)
                out += quote(entry.0) + keySeparator
                try write(entry.1, into: &out, level: level + 1)
            }
            newline(&out, level)
            out += "}"
        case .undefined(let name):
            throw TemplateError.runtime("Object of type Undefined is not JSON serializable (\(name))")
        default:
            throw TemplateError.runtime("Object of type \(value.typeName) is not JSON serializable")
        }
    }

    private func newline(_ out: inout String, _ level: Int) {
        guard let indent else { return }
        out += "\n" + String(repeating: indent, count: level)
    }

    /// json.dumps turns non-string keys into strings: True → "true", None → "null", 1.5 → "1.5".
    private func keyString(_ key: TemplateValue) throws -> String {
        switch key {
        case .string(let text): return text
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .float(let number): return pythonFloatRepr(number)
        default: throw TemplateError.runtime("keys must be str, int, float, bool or None, not \(key.typeName)")
        }
    }

    private func quote(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        out.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\u{08}": out.append(contentsOf: "\\b".unicodeScalars)
            case "\u{0C}": out.append(contentsOf: "\\f".unicodeScalars)
            default:
                if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7E) {
                    if scalar.value > 0xFFFF {
                        let offset = scalar.value - 0x10000
                        out.append(contentsOf: String(format: "\\u%04x\\u%04x", 0xD800 + (offset >> 10), 0xDC00 + (offset & 0x3FF)).unicodeScalars)
                    } else {
                        out.append(contentsOf: String(format: "\\u%04x", scalar.value).unicodeScalars)
                    }
                } else {
                    out.append(scalar)
                }
            }
        }
        out.append("\"")
        return String(out)
    }
}
