import Foundation

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
