import Foundation

// Text → tokens, following jinja2/lexer.py as transformers configures it (trim_blocks=True,
// lstrip_blocks=True, keep_trailing_newline=False). The whitespace rules decide every byte between
// tags, so they mirror Jinja's exactly:
//   * `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` all whitespace after.
//   * trim_blocks: `%}` and `#}` (not `}}`) eat one newline right after them; `+%}` keeps it.
//   * lstrip_blocks: spaces and tabs between the start of a line and `{%` or `{#` (not `{{`) are
//     dropped; `{%+` keeps them. "Start of a line" includes the template start and the point right
//     after a tag whose text ended with a newline.
//   * Source newlines (\r\n, \r) become \n, and one trailing newline of the template is dropped.

enum TemplateToken: Equatable {
    case text(String)
    case variableBegin, variableEnd
    case blockBegin, blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case float(Double)
    case op(String)
    case end
}

struct LocatedToken {
    var token: TemplateToken
    var line: Int
}

struct TemplateLexer {
    private let source: [Unicode.Scalar]
    private var position = 0
    private var line = 1
    private var tokens: [LocatedToken] = []
    /// Whether the previous match ended with a newline (Jinja's `line_starting`), for lstrip_blocks.
    private var lineStarting = true

    init(_ text: String) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var iterator = text.unicodeScalars.makeIterator()
        var pending = iterator.next()
        while let scalar = pending {
            pending = iterator.next()
            if scalar == "\r" {
                scalars.append("\n")
                if pending == "\n" { pending = iterator.next() }
            } else {
                scalars.append(scalar)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        source = scalars
    }

    mutating func tokenize() throws -> [LocatedToken] {
        while position < source.count {
            guard let (start, kind) = nextTagStart() else {
                emitText(position, source.count)
                break
            }
            var textEnd = start
            let sign: Unicode.Scalar? = start + 2 < source.count && (source[start + 2] == "-" || source[start + 2] == "+") ? source[start + 2] : nil
            if sign == "-" {
                while textEnd > position, isPythonWhitespace(source[textEnd - 1]) { textEnd -= 1 }
            } else if sign != "+" && kind != .variable {
                // lstrip_blocks: drop the run of whitespace between the line start and the tag.
                var lineStart = textEnd
                while lineStart > position, source[lineStart - 1] != "\n" { lineStart -= 1 }
                let atLineStart = lineStart > position || lineStarting
                if atLineStart, lineStart < textEnd, (lineStart..<textEnd).allSatisfy({ isPythonWhitespace(source[$0]) }) {
                    textEnd = lineStart
                }
            }
            emitText(position, textEnd)
            countLines(textEnd, start)
            position = start + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case .comment: try skipComment()
            case .block:
                if try !lexRawBlock(sign: sign) { try lexTag(isBlock: true) }
            case .variable: try lexTag(isBlock: false)
            }
        }
        tokens.append(LocatedToken(token: .end, line: line))
        return tokens
    }

    private enum TagKind { case variable, block, comment }

    private func nextTagStart() -> (Int, TagKind)? {
        var index = position
        while index + 1 < source.count {
            if source[index] == "{" {
                switch source[index + 1] {
                case "{": return (index, .variable)
                case "%": return (index, .block)
                case "#": return (index, .comment)
                default: break
                }
            }
            index += 1
        }
        return nil
    }

    private mutating func emitText(_ start: Int, _ end: Int) {
        guard start < end else { return }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: source[start..<end])
        tokens.append(LocatedToken(token: .text(String(view)), line: line))
        countLines(start, end)
    }

    private mutating func countLines(_ start: Int, _ end: Int) {
        guard start < end else { return }
        for index in start..<end where source[index] == "\n" { line += 1 }
    }

    private func startsWith(_ text: String, at index: Int) -> Bool {
        var at = index
        for scalar in text.unicodeScalars {
            guard at < source.count, source[at] == scalar else { return false }
            at += 1
        }
        return true
    }

    /// After a closing delimiter: `-` eats all whitespace, a plain block/comment end eats one newline.
    private mutating func finishTag(sign: Unicode.Scalar?, trimsNewline: Bool) {
        let start = position
        if sign == "-" {
            while position < source.count, isPythonWhitespace(source[position]) { position += 1 }
        } else if sign == nil, trimsNewline, position < source.count, source[position] == "\n" {
            position += 1
        }
        countLines(start, position)
        if position > start {
            lineStarting = source[position - 1] == "\n"
        } else {
            lineStarting = false  // the match ended with the delimiter itself
        }
    }

    private mutating func skipComment() throws {
        let startLine = line
        while position < source.count {
            for sign: Unicode.Scalar? in ["-", "+", nil] {
                let closing = (sign.map { String($0) } ?? "") + "#}"
                if startsWith(closing, at: position) {
                    position += closing.unicodeScalars.count
                    finishTag(sign: sign, trimsNewline: true)
                    return
                }
            }
            if source[position] == "\n" { line += 1 }
            position += 1
        }
        throw TemplateError.syntax("missing end of comment tag", line: startLine)
    }

    /// `{% raw %}...{% endraw %}`: the body is text, not template. Returns false when the tag is not raw.
    private mutating func lexRawBlock(sign: Unicode.Scalar?) throws -> Bool {
        var index = position
        while index < source.count, isPythonWhitespace(source[index]) { index += 1 }
        guard startsWith("raw", at: index) else { return false }
        index += 3
        while index < source.count, isPythonWhitespace(source[index]) { index += 1 }
        // Jinja's raw-begin rule has no trim_blocks newline: `%}` ends it, `-%}` eats whitespace.
        if startsWith("-%}", at: index) {
            index += 3
            while index < source.count, isPythonWhitespace(source[index]) { index += 1 }
        } else if startsWith("%}", at: index) {
            index += 2
        } else {
            return false
        }
        let startLine = line
        countLines(position, index)
        // Find `{%[-+]? endraw [-+]?%}`.
        var search = index
        while search + 1 < source.count {
            if source[search] == "{" && source[search + 1] == "%" {
                var cursor = search + 2
                let endSign: Unicode.Scalar? = cursor < source.count && (source[cursor] == "-" || source[cursor] == "+") ? source[cursor] : nil
                if endSign != nil { cursor += 1 }
                while cursor < source.count, isPythonWhitespace(source[cursor]) { cursor += 1 }
                if startsWith("endraw", at: cursor) {
                    cursor += 6
                    while cursor < source.count, isPythonWhitespace(source[cursor]) { cursor += 1 }
                    let closeSign: Unicode.Scalar? = cursor < source.count && (source[cursor] == "-" || source[cursor] == "+") ? source[cursor] : nil
                    if startsWith((closeSign.map { String($0) } ?? "") + "%}", at: cursor) {
                        var textEnd = search
                        if endSign == "-" {
                            while textEnd > index, isPythonWhitespace(source[textEnd - 1]) { textEnd -= 1 }
                        } else if endSign != "+" {
                            var lineStart = textEnd
                            while lineStart > index, source[lineStart - 1] != "\n" { lineStart -= 1 }
                            if lineStart > index, lineStart < textEnd,
                               (lineStart..<textEnd).allSatisfy({ isPythonWhitespace(source[$0]) }) {
                                textEnd = lineStart
                            }
                        }
                        position = index
                        emitText(index, textEnd)
                        countLines(textEnd, cursor)
                        position = cursor + (closeSign == nil ? 2 : 3)
                        finishTag(sign: closeSign, trimsNewline: true)
                        return true
                    }
                }
            }
            search += 1
        }
        throw TemplateError.syntax("missing end of raw directive", line: startLine)
    }

    /// The inside of `{{ ... }}` or `{% ... %}`: names, literals and operators up to the closing
    /// delimiter at bracket depth 0 (so `}}` inside a dict literal is two braces, as in Jinja).
    private mutating func lexTag(isBlock: Bool) throws {
        tokens.append(LocatedToken(token: isBlock ? .blockBegin : .variableBegin, line: line))
        let startLine = line
        var brackets: [Unicode.Scalar] = []
        while true {
            // Whitespace between tokens.
            while position < source.count, isPythonWhitespace(source[position]) {
                if source[position] == "\n" { line += 1 }
                position += 1
            }
            guard position < source.count else {
                throw TemplateError.syntax("unexpected end of template, expected '\(isBlock ? "%}" : "}}")'", line: startLine)
            }
            if brackets.isEmpty {
                let close = isBlock ? "%}" : "}}"
                for sign: Unicode.Scalar? in (isBlock ? ["-", "+", nil] : ["-", nil]) {
                    let closing = (sign.map { String($0) } ?? "") + close
                    if startsWith(closing, at: position) {
                        tokens.append(LocatedToken(token: isBlock ? .blockEnd : .variableEnd, line: line))
                        position += closing.unicodeScalars.count
                        finishTag(sign: sign, trimsNewline: isBlock)
                        return
                    }
                }
            }
            let scalar = source[position]
            let tokenLine = line
            if scalar == "'" || scalar == "\"" {
                tokens.append(LocatedToken(token: .string(try lexString(quote: scalar)), line: tokenLine))
            } else if scalar.properties.numericType == .decimal && scalar.isASCII {
                tokens.append(LocatedToken(token: lexNumber(), line: tokenLine))
            } else if scalar == "_" || scalar.properties.isXIDStart {
                var end = position + 1
                while end < source.count, source[end] == "_" || source[end].properties.isXIDContinue { end += 1 }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: source[position..<end])
                tokens.append(LocatedToken(token: .name(String(view)), line: tokenLine))
                position = end
            } else {
                let op = try lexOperator()
                switch op {
                case "(": brackets.append(")")
                case "[": brackets.append("]")
                case "{": brackets.append("}")
                case ")", "]", "}":
                    guard let expected = brackets.popLast() else { throw TemplateError.syntax("unexpected '\(op)'", line: tokenLine) }
                    guard String(expected) == op else { throw TemplateError.syntax("unexpected '\(op)', expected '\(expected)'", line: tokenLine) }
                default: break
                }
                tokens.append(LocatedToken(token: .op(op), line: tokenLine))
            }
        }
    }

    private mutating func lexOperator() throws -> String {
        for op in ["//", "**", "==", "!=", ">=", "<="] where startsWith(op, at: position) {
            position += 2
            return op
        }
        let scalar = source[position]
        guard "+-/*%~[](){}><=.:|,;".unicodeScalars.contains(scalar) else {
            throw TemplateError.syntax("unexpected char '\(Character(scalar))'", line: line)
        }
        position += 1
        return String(scalar)
    }

    /// Integers and floats as Jinja reads them: `_` separators, `1.5`, `1e3`, `2.5E-2`.
    private mutating func lexNumber() -> TemplateToken {
        func digits(_ index: inout Int) -> String {
            var out = ""
            while index < source.count, (source[index].isASCII && source[index].properties.numericType == .decimal) || (source[index] == "_" && index + 1 < source.count && source[index + 1].properties.numericType == .decimal) {
                if source[index] != "_" { out.unicodeScalars.append(source[index]) }
                index += 1
            }
            return out
        }
        var index = position
        let whole = digits(&index)
        var text = whole
        var isFloat = false
        // A fraction only when a digit follows the point, and not right after another point (`a.0.1`).
        let afterPoint = position > 0 && source[position - 1] == "."
        if !afterPoint, index + 1 < source.count, source[index] == ".", source[index + 1].isASCII, source[index + 1].properties.numericType == .decimal {
            index += 1
            text += "." + digits(&index)
            isFloat = true
        }
        if !afterPoint, index < source.count, source[index] == "e" || source[index] == "E" {
            var cursor = index + 1
            var exponent = "e"
            if cursor < source.count, source[cursor] == "+" || source[cursor] == "-" {
                exponent.unicodeScalars.append(source[cursor])
                cursor += 1
            }
            if cursor < source.count, source[cursor].isASCII, source[cursor].properties.numericType == .decimal {
                exponent += digits(&cursor)
                text += exponent
                index = cursor
                isFloat = true
            }
        }
        position = index
        if isFloat { return .float(Double(text) ?? .nan) }
        return Int(text).map { .integer($0) } ?? .float(Double(text) ?? .nan)
    }

    /// A string literal, unescaped like Python's `unicode_escape` codec (which Jinja uses): known
    /// escapes are decoded, unknown ones (e.g. `\d`) keep their backslash.
    private mutating func lexString(quote: Unicode.Scalar) throws -> String {
        let startLine = line
        var out = String.UnicodeScalarView()
        position += 1
        while position < source.count {
            let scalar = source[position]
            if scalar == quote {
                position += 1
                return String(out)
            }
            if scalar == "\n" { line += 1 }
            guard scalar == "\\", position + 1 < source.count else {
                out.append(scalar)
                position += 1
                continue
            }
            let escape = source[position + 1]
            position += 2
            switch escape {
            case "\n": line += 1  // backslash-newline: a line continuation, nothing is kept
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var value = escape.value - 0x30
                var count = 1
                while count < 3, position < source.count, ("0"..."7").contains(source[position]) {
                    value = value * 8 + source[position].value - 0x30
                    position += 1
                    count += 1
                }
                out.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            case "x", "u", "U":
                let width = escape == "x" ? 2 : (escape == "u" ? 4 : 8)
                guard position + width <= source.count else { throw TemplateError.syntax("truncated \\\(escape) escape", line: line) }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: source[position..<position + width])
                guard let value = UInt32(String(view), radix: 16), let decoded = Unicode.Scalar(value) else {
                    throw TemplateError.syntax("invalid \\\(escape) escape", line: line)
                }
                out.append(decoded)
                position += width
            case "N":
                throw TemplateError.unsupported("\\N{...} escape in a string literal", line: line)
            default:
                out.append("\\")
                out.append(escape)
            }
        }
        throw TemplateError.syntax("unterminated string", line: startLine)
    }
}
