import Foundation

// Tokens → AST, following jinja2/parser.py's grammar and precedence, so that e.g. `'a' + x|trim`
// filters only `x`, `not a is defined` negates the test, and `a ~ b + c` is `(a ~ b) + c`:
//
//   expression  := or ('if' or ('else' expression)?)*
//   or          := and ('or' and)*          and := not ('and' not)*       not := 'not' not | compare
//   compare     := math1 (('=='|'!='|'<'|'<='|'>'|'>='|'in'|'not in') math1)*
//   math1       := concat (('+'|'-') concat)*                             concat := math2 ('~' math2)*
//   math2       := pow (('*'|'/'|'//'|'%') pow)*                          pow := unary ('**' unary)*
//   unary       := ('-'|'+') unary | primary postfix* ; then filters, tests and calls
//
// Filters and tests are checked against what ChatTemplateBuiltins implements while parsing, as Jinja
// checks them while compiling: an unknown one fails at init, not halfway through a render.

struct TemplateExpression {
    indirect enum Kind {
        case literal(TemplateValue)
        case name(String)
        case list([TemplateExpression])
        case tuple([TemplateExpression])
        case dict([(TemplateExpression, TemplateExpression)])
        case attribute(TemplateExpression, String)
        case item(TemplateExpression, TemplateExpression)
        case slice(TemplateExpression, TemplateExpression?, TemplateExpression?, TemplateExpression?)
        case call(TemplateExpression, [TemplateExpression], [(String, TemplateExpression)])
        case filter(TemplateExpression, TemplateFilterCall)
        case test(TemplateExpression, String, [TemplateExpression], negated: Bool)
        case not(TemplateExpression)
        case negate(TemplateExpression)
        case plus(TemplateExpression)
        case binary(String, TemplateExpression, TemplateExpression)  // + - * / // % ** ~
        case and(TemplateExpression, TemplateExpression)
        case or(TemplateExpression, TemplateExpression)
        case compare(TemplateExpression, [(String, TemplateExpression)])  // == != < <= > >= in notin
        case conditional(then: TemplateExpression, condition: TemplateExpression, otherwise: TemplateExpression?)
    }
    var kind: Kind
    var line: Int
}

struct TemplateFilterCall {
    var name: String
    var arguments: [TemplateExpression]
    var keywordArguments: [(String, TemplateExpression)]
    var line: Int
}

indirect enum TemplateAssignTarget {
    case name(String)
    case tuple([TemplateAssignTarget])
    case namespaceAttribute(String, String)  // {% set ns.attr = ... %}
}

struct TemplateMacro {
    var name: String
    var parameters: [(String, TemplateExpression?)]
    var body: [TemplateNode]
    /// Jinja lets a macro take extra arguments only when its body reads `varargs` / `kwargs`.
    var takesVarargs: Bool
    var takesKwargs: Bool
}

indirect enum TemplateNode {
    case text(String)
    case output(TemplateExpression)
    case conditional([(TemplateExpression, [TemplateNode])], otherwise: [TemplateNode], line: Int)
    case forLoop(target: TemplateAssignTarget, iterable: TemplateExpression, condition: TemplateExpression?,
                 body: [TemplateNode], otherwise: [TemplateNode], line: Int)
    case set(TemplateAssignTarget, TemplateExpression, line: Int)
    case setBlock(TemplateAssignTarget, filters: [TemplateFilterCall], body: [TemplateNode], line: Int)
    case macro(TemplateMacro, line: Int)
    case filterBlock([TemplateFilterCall], body: [TemplateNode], line: Int)
    case breakLoop(line: Int)
    case continueLoop(line: Int)
    case generation([TemplateNode], line: Int)  // transformers' {% generation %}: renders its body
}

struct TemplateParser {
    private let tokens: [LocatedToken]
    private var index = 0
    private var loopDepth = 0
    /// Every variable name read so far (for a macro: whether its body reads `varargs` or `kwargs`).
    private var namesRead = Set<String>()

    init(tokens: [LocatedToken]) { self.tokens = tokens }

    mutating func parseTemplate() throws -> [TemplateNode] {
        try subparse(until: []).body
    }

    // MARK: Statements

    private var current: LocatedToken { tokens[index] }
    private var next: LocatedToken { tokens[min(index + 1, tokens.count - 1)] }
    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func isName(_ name: String, _ token: LocatedToken? = nil) -> Bool {
        if case .name(let value) = (token ?? current).token { return value == name }
        return false
    }

    private func isOp(_ op: String) -> Bool {
        if case .op(let value) = current.token { return value == op }
        return false
    }

    private func describe(_ token: TemplateToken) -> String {
        switch token {
        case .text: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name(let name): return "'\(name)'"
        case .string: return "string"
        case .integer, .float: return "number"
        case .op(let op): return "'\(op)'"
        case .end: return "end of template"
        }
    }

    private func fail(_ message: String) -> TemplateError { .syntax(message, line: current.line) }

    private mutating func expectName(_ name: String? = nil) throws -> String {
        guard case .name(let value) = current.token, name == nil || value == name else {
            throw fail("expected \(name.map { "'\($0)'" } ?? "a name"), got \(describe(current.token))")
        }
        advance()
        return value
    }

    private mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw fail("expected '\(op)', got \(describe(current.token))") }
        advance()
    }

    private mutating func expectBlockEnd() throws {
        guard current.token == .blockEnd else { throw fail("expected end of statement block, got \(describe(current.token))") }
        advance()
    }

    /// Nodes up to one of `endTags`; returns the end tag met (its name consumed, the rest of its tag not).
    private mutating func subparse(until endTags: Set<String>) throws -> (body: [TemplateNode], endTag: String?) {
        var body: [TemplateNode] = []
        while true {
            let token = current
            switch token.token {
            case .text(let text):
                body.append(.text(text))
                advance()
            case .variableBegin:
                advance()
                let expression = try parseTuple()
                guard current.token == .variableEnd else { throw fail("expected end of print statement, got \(describe(current.token))") }
                advance()
                body.append(.output(expression))
            case .blockBegin:
                advance()
                guard case .name(let tag) = current.token else { throw fail("tag name expected") }
                if endTags.contains(tag) {
                    advance()
                    return (body, tag)
                }
                advance()
                body.append(try parseStatement(tag, line: token.line, endTags: endTags))
            case .end:
                if !endTags.isEmpty {
                    let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw TemplateError.syntax("unexpected end of template, expected \(expected)", line: token.line)
                }
                return (body, nil)
            default:
                throw fail("unexpected \(describe(token.token))")
            }
        }
    }

    private mutating func parseStatement(_ tag: String, line: Int, endTags: Set<String>) throws -> TemplateNode {
        switch tag {
        case "if": return try parseIf(line: line)
        case "for": return try parseFor(line: line)
        case "set": return try parseSet(line: line)
        case "macro": return try parseMacro(line: line)
        case "filter":
            let filters = try parseFilterChain(startInline: true)
            try expectBlockEnd()
            let body = try subparse(until: ["endfilter"]).body
            try expectBlockEnd()
            return .filterBlock(filters, body: body, line: line)
        case "break", "continue":
            guard loopDepth > 0 else { throw TemplateError.syntax("'\(tag)' outside of a loop", line: line) }
            try expectBlockEnd()
            return tag == "break" ? .breakLoop(line: line) : .continueLoop(line: line)
        case "generation":
            try expectBlockEnd()
            let body = try subparse(until: ["endgeneration"]).body
            try expectBlockEnd()
            return .generation(body, line: line)
        case "include", "import", "from", "extends", "block", "call", "with", "autoescape", "trans", "do":
            throw TemplateError.unsupported("tag \"\(tag)\"", line: line)
        default:
            if !endTags.isEmpty {
                let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                throw TemplateError.syntax("encountered unknown tag '\(tag)'; expected \(expected)", line: line)
            }
            throw TemplateError.syntax("encountered unknown tag '\(tag)'", line: line)
        }
    }

    private mutating func parseIf(line: Int) throws -> TemplateNode {
        var branches: [(TemplateExpression, [TemplateNode])] = []
        var condition = try parseTuple(withCondexpr: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try subparse(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple(withCondexpr: false)
            case "else":
                try expectBlockEnd()
                let otherwise = try subparse(until: ["endif"]).body
                try expectBlockEnd()
                return .conditional(branches, otherwise: otherwise, line: line)
            default:
                try expectBlockEnd()
                return .conditional(branches, otherwise: [], line: line)
            }
        }
    }

    private mutating func parseFor(line: Int) throws -> TemplateNode {
        let target = try parseAssignTarget(withNamespace: false, endNames: ["in"])
        _ = try expectName("in")
        let iterable = try parseTuple(withCondexpr: false, endNames: ["recursive"])
        var condition: TemplateExpression?
        if isName("if") {
            advance()
            condition = try parseExpression()
        }
        if isName("recursive") { throw TemplateError.unsupported("recursive for loop", line: line) }
        try expectBlockEnd()
        loopDepth += 1
        let (body, end) = try subparse(until: ["endfor", "else"])
        loopDepth -= 1
        var otherwise: [TemplateNode] = []
        if end == "else" {
            try expectBlockEnd()
            otherwise = try subparse(until: ["endfor"]).body
        }
        try expectBlockEnd()
        return .forLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise, line: line)
    }

    private mutating func parseSet(line: Int) throws -> TemplateNode {
        let target = try parseAssignTarget(withNamespace: true, endNames: [])
        if isOp("=") {
            advance()
            let value = try parseTuple()
            try expectBlockEnd()
            return .set(target, value, line: line)
        }
        // Block set: {% set x | filter %}...{% endset %}
        let filters = isOp("|") ? try parseFilterChain(startInline: false) : []
        try expectBlockEnd()
        let body = try subparse(until: ["endset"]).body
        try expectBlockEnd()
        return .setBlock(target, filters: filters, body: body, line: line)
    }

    private mutating func parseMacro(line: Int) throws -> TemplateNode {
        let name = try expectName()
        var parameters: [(String, TemplateExpression?)] = []
        try expectOp("(")
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let parameter = try expectName()
            if isOp("=") {
                advance()
                parameters.append((parameter, try parseExpression()))
            } else {
                guard parameters.allSatisfy({ $0.1 == nil }) else { throw fail("non-default argument follows default argument") }
                parameters.append((parameter, nil))
            }
        }
        try expectOp(")")
        try expectBlockEnd()
        let (outerLoopDepth, outerNames) = (loopDepth, namesRead)
        loopDepth = 0  // break/continue inside a macro do not reach an enclosing loop
        namesRead = []
        let body = try subparse(until: ["endmacro"]).body
        let bodyNames = namesRead
        (loopDepth, namesRead) = (outerLoopDepth, outerNames.union(bodyNames))
        if case .name = current.token { advance() }  // {% endmacro name %}
        try expectBlockEnd()
        let macro = TemplateMacro(name: name, parameters: parameters, body: body,
                                  takesVarargs: bodyNames.contains("varargs"), takesKwargs: bodyNames.contains("kwargs"))
        return .macro(macro, line: line)
    }

    /// `for` and `set` targets: a name, `a, b`, `(a, b)`, or (set only) `ns.attr`.
    private mutating func parseAssignTarget(withNamespace: Bool, endNames: Set<String>) throws -> TemplateAssignTarget {
        if withNamespace, case .name(let namespace) = current.token, case .op(".") = next.token {
            advance()
            advance()
            return .namespaceAttribute(namespace, try expectName())
        }
        var targets: [TemplateAssignTarget] = []
        var isTuple = false
        while true {
            if !targets.isEmpty { try expectOp(",") }
            if current.token == .blockEnd || isOp("=") || isOp(")") || endNames.contains(where: { isName($0) }) { break }
            targets.append(try parseSimpleTarget())
            if isOp(",") { isTuple = true } else { break }
        }
        guard let first = targets.first else { throw fail("expected an assignment target, got \(describe(current.token))") }
        return isTuple ? .tuple(targets) : first
    }

    private mutating func parseSimpleTarget() throws -> TemplateAssignTarget {
        if isOp("(") {
            advance()
            let inner = try parseAssignTarget(withNamespace: false, endNames: [])
            try expectOp(")")
            return inner
        }
        let name = try expectName()
        guard !["true", "false", "none", "True", "False", "None"].contains(name) else { throw fail("can't assign to '\(name)'") }
        return .name(name)
    }

    // MARK: Expressions

    private mutating func parseExpression(withCondexpr: Bool = true) throws -> TemplateExpression {
        withCondexpr ? try parseConditional() : try parseOr()
    }

    private mutating func parseConditional() throws -> TemplateExpression {
        var line = current.line
        var expression = try parseOr()
        while isName("if") {
            advance()
            let condition = try parseOr()
            var otherwise: TemplateExpression?
            if isName("else") {
                advance()
                otherwise = try parseConditional()
            }
            expression = TemplateExpression(kind: .conditional(then: expression, condition: condition, otherwise: otherwise), line: line)
            line = current.line
        }
        return expression
    }

    private mutating func parseOr() throws -> TemplateExpression {
        var left = try parseAnd()
        while isName("or") {
            let line = current.line
            advance()
            left = TemplateExpression(kind: .or(left, try parseAnd()), line: line)
        }
        return left
    }

    private mutating func parseAnd() throws -> TemplateExpression {
        var left = try parseNot()
        while isName("and") {
            let line = current.line
            advance()
            left = TemplateExpression(kind: .and(left, try parseNot()), line: line)
        }
        return left
    }

    private mutating func parseNot() throws -> TemplateExpression {
        if isName("not") {
            let line = current.line
            advance()
            return TemplateExpression(kind: .not(try parseNot()), line: line)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> TemplateExpression {
        let line = current.line
        let first = try parseMath1()
        var operations: [(String, TemplateExpression)] = []
        while true {
            if case .op(let op) = current.token, ["==", "!=", "<", "<=", ">", ">="].contains(op) {
                advance()
                operations.append((op, try parseMath1()))
            } else if isName("in") {
                advance()
                operations.append(("in", try parseMath1()))
            } else if isName("not"), isName("in", next) {
                advance()
                advance()
                operations.append(("notin", try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? first : TemplateExpression(kind: .compare(first, operations), line: line)
    }

    private mutating func parseBinary(_ operators: Set<String>, _ operand: (inout TemplateParser) throws -> TemplateExpression) throws -> TemplateExpression {
        var left = try operand(&self)
        while case .op(let op) = current.token, operators.contains(op) {
            let line = current.line
            advance()
            left = TemplateExpression(kind: .binary(op, left, try operand(&self)), line: line)
        }
        return left
    }

    private mutating func parseMath1() throws -> TemplateExpression { try parseBinary(["+", "-"]) { try $0.parseConcat() } }
    private mutating func parseConcat() throws -> TemplateExpression { try parseBinary(["~"]) { try $0.parseMath2() } }
    private mutating func parseMath2() throws -> TemplateExpression { try parseBinary(["*", "/", "//", "%"]) { try $0.parsePow() } }
    private mutating func parsePow() throws -> TemplateExpression { try parseBinary(["**"]) { try $0.parseUnary() } }

    private mutating func parseUnary(withFilter: Bool = true) throws -> TemplateExpression {
        let line = current.line
        var node: TemplateExpression
        if isOp("-") {
            advance()
            node = TemplateExpression(kind: .negate(try parseUnary(withFilter: false)), line: line)
        } else if isOp("+") {
            advance()
            node = TemplateExpression(kind: .plus(try parseUnary(withFilter: false)), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> TemplateExpression {
        let token = current
        switch token.token {
        case .name(let name):
            advance()
            switch name {
            case "true", "True": return TemplateExpression(kind: .literal(.bool(true)), line: token.line)
            case "false", "False": return TemplateExpression(kind: .literal(.bool(false)), line: token.line)
            case "none", "None": return TemplateExpression(kind: .literal(.null), line: token.line)
            default:
                namesRead.insert(name)
                return TemplateExpression(kind: .name(name), line: token.line)
            }
        case .string(var text):
            advance()
            while case .string(let more) = current.token {  // adjacent literals concatenate
                text += more
                advance()
            }
            return TemplateExpression(kind: .literal(.string(text)), line: token.line)
        case .integer(let value):
            advance()
            return TemplateExpression(kind: .literal(.int(value)), line: token.line)
        case .float(let value):
            advance()
            return TemplateExpression(kind: .literal(.float(value)), line: token.line)
        case .op("("):
            advance()
            let inner = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return inner
        case .op("["):
            advance()
            var items: [TemplateExpression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return TemplateExpression(kind: .list(items), line: token.line)
        case .op("{"):
            advance()
            var entries: [(TemplateExpression, TemplateExpression)] = []
            while !isOp("}") {
                if !entries.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                entries.append((key, try parseExpression()))
            }
            try expectOp("}")
            return TemplateExpression(kind: .dict(entries), line: token.line)
        default:
            throw fail("unexpected \(describe(token.token))")
        }
    }

    /// Comma-separated expressions: one expression alone, or a tuple.
    private mutating func parseTuple(withCondexpr: Bool = true, endNames: Set<String> = [], explicitParentheses: Bool = false) throws -> TemplateExpression {
        let line = current.line
        var items: [TemplateExpression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if current.token == .variableEnd || current.token == .blockEnd || isOp(")") || endNames.contains(where: { isName($0) }) { break }
            items.append(try parseExpression(withCondexpr: withCondexpr))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw fail("expected an expression, got \(describe(current.token))") }
        }
        return TemplateExpression(kind: .tuple(items), line: line)
    }

    private mutating func parsePostfix(_ start: TemplateExpression) throws -> TemplateExpression {
        var node = start
        while true {
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpression(_ start: TemplateExpression) throws -> TemplateExpression {
        var node = start
        while true {
            if isOp("|") {
                for filter in try parseFilterChain(startInline: false) {
                    node = TemplateExpression(kind: .filter(node, filter), line: filter.line)
                }
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: TemplateExpression) throws -> TemplateExpression {
        let line = current.line
        if isOp(".") {
            advance()
            switch current.token {
            case .name(let name):
                advance()
                return TemplateExpression(kind: .attribute(node, name), line: line)
            case .integer(let value):
                advance()
                return TemplateExpression(kind: .item(node, TemplateExpression(kind: .literal(.int(value)), line: line)), line: line)
            default:
                throw fail("expected name or number")
            }
        }
        try expectOp("[")
        var subscripts: [TemplateExpression] = []
        var slice: (TemplateExpression?, TemplateExpression?, TemplateExpression?)?
        while !isOp("]") {
            if !subscripts.isEmpty || slice != nil { try expectOp(",") }
            // A slice `a:b:c` (any part may be missing) or a plain expression.
            var start: TemplateExpression?
            if !isOp(":") {
                let expression = try parseExpression()
                if !isOp(":") {
                    subscripts.append(expression)
                    continue
                }
                start = expression
            }
            advance()  // first ':'
            var stop: TemplateExpression?
            var step: TemplateExpression?
            if !isOp(":") && !isOp("]") && !isOp(",") { stop = try parseExpression() }
            if isOp(":") {
                advance()
                if !isOp("]") && !isOp(",") { step = try parseExpression() }
            }
            guard subscripts.isEmpty, slice == nil else { throw TemplateError.unsupported("multi-dimensional subscript", line: line) }
            slice = (start, stop, step)
        }
        try expectOp("]")
        if let slice {
            guard subscripts.isEmpty else { throw TemplateError.unsupported("multi-dimensional subscript", line: line) }
            return TemplateExpression(kind: .slice(node, slice.0, slice.1, slice.2), line: line)
        }
        guard !subscripts.isEmpty else { throw fail("expected a subscript") }
        let key = subscripts.count == 1 ? subscripts[0] : TemplateExpression(kind: .tuple(subscripts), line: line)
        return TemplateExpression(kind: .item(node, key), line: line)
    }

    private mutating func parseCallArguments() throws -> ([TemplateExpression], [(String, TemplateExpression)]) {
        let line = current.line
        try expectOp("(")
        var arguments: [TemplateExpression] = []
        var keywordArguments: [(String, TemplateExpression)] = []
        var requireComma = false
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            if isOp("*") || isOp("**") { throw TemplateError.unsupported("*args/**kwargs in a call", line: current.line) }
            if case .name(let name) = current.token, case .op("=") = next.token {
                advance()
                advance()
                keywordArguments.append((name, try parseExpression()))
            } else {
                guard keywordArguments.isEmpty else { throw TemplateError.syntax("invalid syntax for function call expression", line: line) }
                arguments.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return (arguments, keywordArguments)
    }

    private mutating func parseCall(_ node: TemplateExpression) throws -> TemplateExpression {
        let line = current.line
        let (arguments, keywordArguments) = try parseCallArguments()
        return TemplateExpression(kind: .call(node, arguments, keywordArguments), line: line)
    }

    /// `| name(args) | name ...`; with startInline the first `|` is absent (`{% filter upper %}`).
    private mutating func parseFilterChain(startInline: Bool) throws -> [TemplateFilterCall] {
        var filters: [TemplateFilterCall] = []
        var inline = startInline
        while isOp("|") || inline {
            if !inline { advance() }
            inline = false
            let line = current.line
            var name = try expectName()
            while isOp(".") {
                advance()
                name += "." + (try expectName())
            }
            guard TemplateBuiltins.filterNames.contains(name) else {
                throw TemplateError.unsupported("filter \"\(name)\"", line: line)
            }
            var arguments: [TemplateExpression] = []
            var keywordArguments: [(String, TemplateExpression)] = []
            if isOp("(") { (arguments, keywordArguments) = try parseCallArguments() }
            filters.append(TemplateFilterCall(name: name, arguments: arguments, keywordArguments: keywordArguments, line: line))
        }
        return filters
    }

    private mutating func parseTest(_ node: TemplateExpression) throws -> TemplateExpression {
        let line = current.line
        advance()  // 'is'
        var negated = false
        if isName("not") {
            advance()
            negated = true
        }
        var name = try expectName()
        while isOp(".") {
            advance()
            name += "." + (try expectName())
        }
        guard TemplateBuiltins.testNames.contains(name) else { throw TemplateError.unsupported("test \"\(name)\"", line: line) }
        var arguments: [TemplateExpression] = []
        if isOp("(") {
            let (positional, keyword) = try parseCallArguments()
            guard keyword.isEmpty else { throw TemplateError.unsupported("keyword arguments to a test", line: line) }
            arguments = positional
        } else {
            // One bare argument: `is divisibleby 3`, `is sameas false`.
            let startsArgument: Bool
            switch current.token {
            case .name(let word): startsArgument = !["else", "or", "and"].contains(word)
            case .string, .integer, .float, .op("("), .op("["), .op("{"): startsArgument = true
            default: startsArgument = false
            }
            if startsArgument {
                if isName("is") { throw fail("you cannot chain multiple tests with is") }
                arguments = [try parsePostfix(try parsePrimary())]
            }
        }
        return TemplateExpression(kind: .test(node, name, arguments, negated: negated), line: line)
    }
}
