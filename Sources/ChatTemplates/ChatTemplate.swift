import DPOSupport
import Foundation

// Hugging Face chat templates (Jinja2) rendered in Swift, byte-equal to
// `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`.
//
// transformers renders with `jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True)` plus the loop-controls extension, a `{% generation %}` tag, the globals
// `raise_exception`, `strftime_now`, `namespace` and `dict`, and its own `tojson` filter. This file is
// the public face; the work is done by a small pipeline:
//
//   ChatTemplateLexer.swift      text → tokens (whitespace control, trim_blocks, lstrip_blocks)
//   ChatTemplateParser.swift     tokens → AST; unknown filters, tests and tags are refused here
//   ChatTemplateEvaluator.swift  AST + variables → text (scopes, loops, macros, expressions)
//   ChatTemplateValues.swift     Python's value semantics (truth, ==, str(), repr(), json.dumps)
//   ChatTemplateBuiltins.swift   filters, tests, string/dict methods, globals, strftime
//
// What it cannot render it refuses with a DPOError that names the construct; it never renders
// something else instead.

/// One chat turn, as transformers' message dicts `{"role": ..., "content": ...}`.
public struct ChatMessage: Equatable, Sendable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

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
        var parser = OrderedJSONParser(json)
        self = try parser.parseDocument()
    }

    /// The member `key` of an object (first match), nil otherwise.
    public subscript(key: String) -> ChatTemplateValue? {
        if case .object(let entries) = self { return entries.first { $0.key == key }?.value }
        return nil
    }
}

public final class ChatTemplate {
    /// Where the template came from (e.g. the tokenizer_config.json path); every error names it.
    public let source: String
    private let program: [TemplateNode]

    /// Parses once; throws DPOError naming `source` and the construct it cannot handle, e.g.
    /// `tokenizer_config.json: chat template uses unsupported filter "foo" (line 3)`.
    public init(_ template: String, source: String) throws {
        self.source = source
        do {
            var lexer = TemplateLexer(template)
            let tokens = try lexer.tokenize()
            var parser = TemplateParser(tokens: tokens)
            program = try parser.parseTemplate()
        } catch let error as TemplateError {
            throw error.dpoError(source: source)
        }
    }

    /// Renders `messages` as transformers does. `bosToken`/`eosToken` become the template variables
    /// `bos_token`/`eos_token` (left undefined when nil, as transformers leaves out special tokens the
    /// tokenizer does not have); `tools` and `documents` are none unless `variables` sets them, as in
    /// `apply_chat_template`. Extra variables (e.g. `enable_thinking`, `xml_tools`, `date_string`) come
    /// from `variables`: String, Bool, integers, Double, arrays, `[String: Any]` (keys sorted), nil/NSNull
    /// (none) or `ChatTemplateValue` (keeps key order). `now` is what `strftime_now` formats, in the
    /// local time zone like Python's `datetime.now()`; pass a fixed date for reproducible renders.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
                       variables: [String: Any] = [:], now: Date = Date()) throws -> String {
        var context: [String: TemplateValue] = [
            "messages": .list(messages.map { message in
                .dict(TemplateDict([("role", .string(message.role)), ("content", .string(message.content))]))
            }),
            "tools": .null,
            "documents": .null,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (name, value) in variables {
            do {
                context[name] = try TemplateValue(swiftValue: value)
            } catch let error as TemplateError {
                throw DPOError("\(source): chat template variable \"\(name)\": \(error.message)")
            }
        }
        do {
            let evaluator = TemplateEvaluator(context: context, now: now)
            return try evaluator.render(program)
        } catch let error as TemplateError {
            throw error.dpoError(source: source)
        }
    }
}

// The parsed program is immutable and each render builds its own evaluator, so one template can be
// shared and rendered from several threads.
extension ChatTemplate: @unchecked Sendable {}

/// Every failure inside the pipeline; turned into a DPOError naming the source at the API boundary.
struct TemplateError: Error {
    enum Kind {
        case syntax          // the text is not a valid template
        case unsupported     // valid Jinja, but a construct this renderer does not implement
        case runtime         // Jinja would raise too (undefined attribute, bad operand types, ...)
        case raised          // the template called raise_exception(message)
    }
    var kind: Kind
    var message: String
    var line: Int?

    static func syntax(_ message: String, line: Int?) -> TemplateError { .init(kind: .syntax, message: message, line: line) }
    static func unsupported(_ what: String, line: Int? = nil) -> TemplateError { .init(kind: .unsupported, message: what, line: line) }
    static func runtime(_ message: String, line: Int? = nil) -> TemplateError { .init(kind: .runtime, message: message, line: line) }

    func dpoError(source: String) -> DPOError {
        let at = line.map { " (line \($0))" } ?? ""
        switch kind {
        case .syntax: return DPOError("\(source): chat template syntax error: \(message)\(at)")
        case .unsupported: return DPOError("\(source): chat template uses unsupported \(message)\(at)")
        case .runtime: return DPOError("\(source): chat template error\(at): \(message)")
        case .raised: return DPOError("\(source): chat template raised an exception\(at): \(message)")
        }
    }
}

// MARK: - Order-preserving JSON

/// A small RFC 8259 parser that keeps object key order (JSONSerialization does not).
struct OrderedJSONParser {
    private let bytes: [UInt8]
    private var position = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    mutating func parseDocument() throws -> ChatTemplateValue {
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw fail("trailing characters") }
        return value
    }

    private func fail(_ what: String) -> DPOError { DPOError("JSON: \(what) at byte \(position)") }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private mutating func parseValue() throws -> ChatTemplateValue {
        skipWhitespace()
        guard position < bytes.count else { throw fail("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            var entries: [ChatTemplateValue.ObjectEntry] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(entries) }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let key = try parseString()
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                entries.append(.init(key, try parseValue()))
                skipWhitespace()
                guard position < bytes.count else { throw fail("unterminated object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(entries) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            position += 1
            var items: [ChatTemplateValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                items.append(try parseValue())
                skipWhitespace()
                guard position < bytes.count else { throw fail("unterminated array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default:
            return try parseNumber()
        }
    }

    private mutating func literal(_ word: String, _ value: ChatTemplateValue) throws -> ChatTemplateValue {
        let word = Array(word.utf8)
        guard position + word.count <= bytes.count, Array(bytes[position..<position + word.count]) == word else {
            throw fail("unexpected character")
        }
        position += word.count
        return value
    }

    private mutating func parseNumber() throws -> ChatTemplateValue {
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
