import Foundation

// AST + variables → text. Scoping follows Jinja: each iteration of a for loop (and each macro call,
// and a `{% generation %}` body, which Jinja runs as a caller macro) gets a fresh frame, so `{% set %}`
// inside a loop neither leaks out nor carries over to the next iteration (that is why templates use
// `namespace()`); names not set in the frame resolve to the enclosing ones. `if` blocks share the
// enclosing frame.

final class TemplateEvaluator {
    final class Frame {
        var variables: [String: TemplateValue] = [:]
        let parent: Frame?
        init(parent: Frame?) { self.parent = parent }

        func lookup(_ name: String) -> TemplateValue? {
            var frame: Frame? = self
            while let current = frame {
                if let value = current.variables[name] { return value }
                frame = current.parent
            }
            return nil
        }
    }

    private enum Flow { case normal, breakLoop, continueLoop }

    private let globals: Frame
    private let context: Frame
    let now: Date
    private var callDepth = 0

    init(context variables: [String: TemplateValue], now: Date) {
        self.now = now
        globals = Frame(parent: nil)
        context = Frame(parent: globals)
        context.variables = variables
        for (name, function) in TemplateBuiltins.globalFunctions(evaluator: self) {
            globals.variables[name] = .callable(function)
        }
    }

    func render(_ program: [TemplateNode]) throws -> String {
        var out = ""
        _ = try execute(program, in: context, into: &out)
        return out
    }

    // MARK: Statements

    private func execute(_ nodes: [TemplateNode], in frame: Frame, into out: inout String) throws -> Flow {
        for node in nodes {
            let flow = try execute(node, in: frame, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    /// Adds the statement's line to errors raised without one.
    private func at<T>(_ line: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as TemplateError where error.line == nil {
            error.line = line
            throw error
        }
    }

    private func execute(_ node: TemplateNode, in frame: Frame, into out: inout String) throws -> Flow {
        switch node {
        case .text(let text):
            out += text
        case .output(let expression):
            out += try at(expression.line) { try pythonStr(evaluate(expression, in: frame)) }
        case .conditional(let branches, let otherwise, let line):
            for (condition, body) in branches where try at(line, { try evaluate(condition, in: frame).isTruthy }) {
                return try execute(body, in: frame, into: &out)
            }
            return try execute(otherwise, in: frame, into: &out)
        case .forLoop(let target, let iterable, let condition, let body, let otherwise, let line):
            return try runLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise,
                               line: line, in: frame, into: &out)
        case .set(let target, let expression, let line):
            try at(line) { try assign(target, try evaluate(expression, in: frame), in: frame) }
        case .setBlock(let target, let filters, let body, let line):
            var captured = ""
            _ = try execute(body, in: frame, into: &captured)
            try at(line) {
                var value = TemplateValue.string(captured)
                for filter in filters { value = try applyFilter(filter, to: value, in: frame) }
                try assign(target, value, in: frame)
            }
        case .macro(let macro, _):
            frame.variables[macro.name] = .callable(makeMacro(macro, definedIn: frame))
        case .filterBlock(let filters, let body, let line):
            var captured = ""
            _ = try execute(body, in: Frame(parent: frame), into: &captured)
            try at(line) {
                var value = TemplateValue.string(captured)
                for filter in filters { value = try applyFilter(filter, to: value, in: frame) }
                out += try pythonStr(value)
            }
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case .generation(let body, _):
            _ = try execute(body, in: Frame(parent: frame), into: &out)
        }
        return .normal
    }

    private func runLoop(target: TemplateAssignTarget, iterable: TemplateExpression, condition: TemplateExpression?,
                         body: [TemplateNode], otherwise: [TemplateNode], line: Int, in frame: Frame,
                         into out: inout String) throws -> Flow {
        var items = try at(line) { try TemplateBuiltins.iterate(try evaluate(iterable, in: frame)) }
        if let condition {
            // `for x in xs if cond`: filtered before the loop starts, so loop.length counts the kept ones.
            items = try at(line) {
                try items.filter { item in
                    let filterFrame = Frame(parent: frame)
                    try assign(target, item, in: filterFrame)
                    return try evaluate(condition, in: filterFrame).isTruthy
                }
            }
        }
        if items.isEmpty {
            _ = try execute(otherwise, in: Frame(parent: frame), into: &out)
            return .normal
        }
        let loop = TemplateLoop(items: items, depth0: 0)
        for (position, item) in items.enumerated() {
            loop.index0 = position
            let iterationFrame = Frame(parent: frame)
            try at(line) { try assign(target, item, in: iterationFrame) }
            iterationFrame.variables["loop"] = .loop(loop)
            if try execute(body, in: iterationFrame, into: &out) == .breakLoop { break }
        }
        return .normal
    }

    private func assign(_ target: TemplateAssignTarget, _ value: TemplateValue, in frame: Frame) throws {
        switch target {
        case .name(let name):
            frame.variables[name] = value
        case .tuple(let targets):
            let items = try TemplateBuiltins.iterate(value)
            guard items.count == targets.count else {
                throw TemplateError.runtime(items.count > targets.count
                    ? "too many values to unpack (expected \(targets.count))"
                    : "not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (inner, item) in zip(targets, items) { try assign(inner, item, in: frame) }
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let namespace)? = frame.lookup(name) else {
                throw TemplateError.runtime("cannot assign attribute on non-namespace object '\(name)'")
            }
            guard !attribute.hasPrefix("_") else {
                throw TemplateError.runtime("chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(attribute)'")
            }
            try namespace.attributes.set(.string(attribute), value)
        }
    }

    private func makeMacro(_ macro: TemplateMacro, definedIn frame: Frame) -> TemplateCallable {
        TemplateCallable(macro.name) { [unowned self] arguments in
            guard arguments.positional.count <= macro.parameters.count || macro.takesVarargs else {
                throw TemplateError.runtime("macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)")
            }
            let macroFrame = Frame(parent: frame)
            for (position, (name, _)) in macro.parameters.enumerated() where position < arguments.positional.count {
                macroFrame.variables[name] = arguments.positional[position]
            }
            if macro.takesVarargs { macroFrame.variables["varargs"] = .tuple(Array(arguments.positional.dropFirst(macro.parameters.count))) }
            var extraKeywords = TemplateDict()
            for (name, value) in arguments.keyword {
                if macro.parameters.contains(where: { $0.0 == name }) {
                    macroFrame.variables[name] = value
                } else if macro.takesKwargs {
                    try extraKeywords.set(.string(name), value)
                } else {
                    throw TemplateError.runtime("macro '\(macro.name)' was invoked with an unknown keyword argument '\(name)'")
                }
            }
            if macro.takesKwargs { macroFrame.variables["kwargs"] = .dict(extraKeywords) }
            for (name, defaultValue) in macro.parameters where macroFrame.variables[name] == nil {
                macroFrame.variables[name] = try defaultValue.map { try self.evaluate($0, in: macroFrame) }
                    ?? .undefined("parameter '\(name)' was not provided")
            }
            self.callDepth += 1
            defer { self.callDepth -= 1 }
            guard self.callDepth < 200 else { throw TemplateError.runtime("macro recursion too deep") }
            var out = ""
            _ = try self.execute(macro.body, in: macroFrame, into: &out)
            return .string(out)
        }
    }

    // MARK: Expressions

    func evaluate(_ expression: TemplateExpression, in frame: Frame) throws -> TemplateValue {
        switch expression.kind {
        case .literal(let value):
            return value
        case .name(let name):
            if let value = frame.lookup(name) { return value }
            if TemplateBuiltins.unsupportedGlobals.contains(name) {
                throw TemplateError.unsupported("global function \"\(name)\"", line: expression.line)
            }
            return .undefined("'\(name)' is undefined")
        case .list(let items):
            return .list(try items.map { try evaluate($0, in: frame) })
        case .tuple(let items):
            return .tuple(try items.map { try evaluate($0, in: frame) })
        case .dict(let entries):
            var dict = TemplateDict()
            for (key, value) in entries { try dict.set(try evaluate(key, in: frame), try evaluate(value, in: frame)) }
            return .dict(dict)
        case .attribute(let object, let name):
            return try TemplateBuiltins.attribute(of: try evaluate(object, in: frame), name)
        case .item(let object, let key):
            return try TemplateBuiltins.item(of: try evaluate(object, in: frame), try evaluate(key, in: frame))
        case .slice(let object, let start, let stop, let step):
            let value = try evaluate(object, in: frame)
            return try TemplateBuiltins.slice(value, start: try start.map { try evaluate($0, in: frame) },
                                              stop: try stop.map { try evaluate($0, in: frame) },
                                              step: try step.map { try evaluate($0, in: frame) })
        case .call(let callee, let positional, let keyword):
            let function = try evaluate(callee, in: frame)
            var arguments = TemplateArguments()
            arguments.positional = try positional.map { try evaluate($0, in: frame) }
            arguments.keyword = try keyword.map { ($0.0, try evaluate($0.1, in: frame)) }
            switch function {
            case .callable(let callable): return try callable.body(arguments)
            case .undefined(let what): throw TemplateError.runtime(what)
            default: throw TemplateError.runtime("'\(function.typeName)' object is not callable")
            }
        case .filter(let value, let filter):
            return try applyFilter(filter, to: try evaluate(value, in: frame), in: frame)
        case .test(let value, let name, let arguments, let negated):
            let result = try TemplateBuiltins.test(name, try evaluate(value, in: frame), try arguments.map { try evaluate($0, in: frame) })
            return .bool(result != negated)
        case .not(let operand):
            return .bool(!(try evaluate(operand, in: frame).isTruthy))
        case .negate(let operand):
            let value = try evaluate(operand, in: frame)
            if let number = value.asInt {
                guard number != Int.min else { throw TemplateError.runtime("integer overflow") }
                return .int(-number)
            }
            if case .float(let number) = value { return .float(-number) }
            if case .undefined(let what) = value { throw TemplateError.runtime(what) }
            throw TemplateError.runtime("bad operand type for unary -: '\(value.typeName)'")
        case .plus(let operand):
            let value = try evaluate(operand, in: frame)
            if let number = value.asInt { return .int(number) }
            if case .float = value { return value }
            if case .undefined(let what) = value { throw TemplateError.runtime(what) }
            throw TemplateError.runtime("bad operand type for unary +: '\(value.typeName)'")
        case .binary(let op, let left, let right):
            return try TemplateBuiltins.binary(op, try evaluate(left, in: frame), try evaluate(right, in: frame))
        case .and(let left, let right):
            let value = try evaluate(left, in: frame)
            return value.isTruthy ? try evaluate(right, in: frame) : value
        case .or(let left, let right):
            let value = try evaluate(left, in: frame)
            return value.isTruthy ? value : try evaluate(right, in: frame)
        case .compare(let first, let operations):
            var left = try evaluate(first, in: frame)
            for (op, rightExpression) in operations {
                let right = try evaluate(rightExpression, in: frame)
                guard try TemplateBuiltins.compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let then, let condition, let otherwise):
            if try evaluate(condition, in: frame).isTruthy { return try evaluate(then, in: frame) }
            return try otherwise.map { try evaluate($0, in: frame) }
                ?? .undefined("the inline if-expression evaluated to false and no else section was defined")
        }
    }

    private func applyFilter(_ filter: TemplateFilterCall, to value: TemplateValue, in frame: Frame) throws -> TemplateValue {
        var arguments = TemplateArguments()
        arguments.positional = try filter.arguments.map { try evaluate($0, in: frame) }
        arguments.keyword = try filter.keywordArguments.map { ($0.0, try evaluate($0.1, in: frame)) }
        do {
            return try TemplateBuiltins.filter(filter.name, value, arguments)
        } catch var error as TemplateError where error.line == nil {
            error.line = filter.line
            throw error
        }
    }
}
