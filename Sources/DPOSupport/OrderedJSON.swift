import Foundation

/// JSON as written: object members in file order, duplicates kept, integers without fraction or
/// exponent as exact `Int`s. For readers that must check keys one by one (a safetensors header, whose
/// duplicate names JSONSerialization would silently merge) or keep their order (chat template
/// variables, which `tojson` prints in insertion order).
public indirect enum OrderedJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([OrderedJSON])
    case object([Member])

    public struct Member: Equatable, Sendable {
        public let key: String
        public let value: OrderedJSON
    }

    /// Parses a whole document (RFC 8259; whitespace around it allowed). Errors say what and the byte offset.
    public init(parsing bytes: [UInt8]) throws {
        var parser = OrderedJSONParser(bytes)
        self = try parser.parseDocument()
    }

    /// The value of the first member `key` of an object, nil otherwise.
    public subscript(key: String) -> OrderedJSON? {
        if case .object(let members) = self { return members.first { $0.key == key }?.value }
        return nil
    }
}

/// A small RFC 8259 parser that keeps object key order (JSONSerialization does not).
struct OrderedJSONParser {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws -> OrderedJSON {
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw fail("trailing characters") }
        return value
    }

    private func fail(_ what: String) -> DPOError { DPOError("JSON: \(what) at byte \(position)") }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    /// After an opening bracket: `element` parses each element, separated by commas, up to `close`.
    private mutating func parseElements(closedBy close: Unicode.Scalar, what: String,
                                        _ element: (inout OrderedJSONParser) throws -> Void) throws {
        position += 1
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: close) { position += 1; return }
        while true {
            try element(&self)
            skipWhitespace()
            guard position < bytes.count else { throw fail("unterminated \(what)") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: close) { position += 1; return }
            throw fail("expected ',' or '\(close)'")
        }
    }

    private mutating func parseValue() throws -> OrderedJSON {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            var entries: [OrderedJSON.Member] = []
            try parseElements(closedBy: "}", what: "object") { p in
                p.skipWhitespace()
                guard p.position < p.bytes.count, p.bytes[p.position] == UInt8(ascii: "\"") else { throw p.fail("expected a key") }
                let key = try p.parseString()
                p.skipWhitespace()
                guard p.position < p.bytes.count, p.bytes[p.position] == UInt8(ascii: ":") else { throw p.fail("expected ':'") }
                p.position += 1
                entries.append(OrderedJSON.Member(key: key, value: try p.parseValue()))
            }
            return .object(entries)
        case UInt8(ascii: "["):
            var items: [OrderedJSON] = []
            try parseElements(closedBy: "]", what: "array") { p in items.append(try p.parseValue()) }
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default:
            return try parseNumber()
        }
    }

    private mutating func literal(_ word: String, _ value: OrderedJSON) throws -> OrderedJSON {
        let word = Array(word.utf8)
        guard position + word.count <= bytes.count, Array(bytes[position..<position + word.count]) == word else {
            throw fail("unexpected character")
        }
        position += word.count
        return value
    }

    private mutating func parseNumber() throws -> OrderedJSON {
        let start = position
        var isInteger = true
        while position < bytes.count {
            let byte = bytes[position]
            if (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") {
                position += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                isInteger = false
                position += 1
            } else {
                break
            }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isInteger, let value = Int(text) { return .int(value) }
        guard !text.isEmpty, let value = Double(text) else { throw fail("invalid number '\(text)'") }
        return .double(value)
    }

    private mutating func parseString() throws -> String {
        position += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var run = position  // start of the current stretch of plain bytes
        func flush(_ end: Int) { scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                flush(position)
                position += 1
                return String(scalars)
            }
            if byte == UInt8(ascii: "\\") {
                flush(position)
                position += 1
                guard position < bytes.count else { break }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code), position + 1 < bytes.count,
                       bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                        position += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            scalars.append("\u{FFFD}")
                            code = low
                        }
                    }
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default:
                    throw fail("invalid escape")
                }
                run = position
                continue
            }
            position += 1
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard position + 4 <= bytes.count,
              let code = UInt32(String(decoding: bytes[position..<position + 4], as: UTF8.self), radix: 16) else {
            throw fail("invalid \\u escape")
        }
        position += 4
        return code
    }
}
