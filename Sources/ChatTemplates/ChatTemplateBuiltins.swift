import Foundation

// Jinja's operators, filters and tests, Python's str/dict methods and transformers' globals, each
// written to give what jinja2 3.1 gives in transformers' sandbox. What is not here is refused:
// unknown filters and tests at parse time, unimplemented methods and globals when reached.

enum TemplateBuiltins {
    // MARK: Names

    static let filterNames: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "first", "float", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round",
        "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper",
    ]

    static let testNames: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "even", "false", "filter", "float",
        "ge", ">=", "gt", "greaterthan", ">", "in", "integer", "iterable", "le", "<=", "lessthan", "lower", "lt", "<",
        "mapping", "ne", "!=", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined",
        "upper",
    ]

    /// Jinja globals this renderer does not implement: referencing one fails instead of reading as undefined.
    static let unsupportedGlobals: Set<String> = ["cycler", "joiner", "lipsum"]

    // MARK: Globals

    static func globalFunctions(evaluator: TemplateEvaluator) -> [String: TemplateCallable] {
        [
            "raise_exception": TemplateCallable("raise_exception") { arguments in
                let message = try arguments.bind("raise_exception", [("message", nil)])[0]
                throw TemplateError(kind: .raised, message: try pythonStr(message), line: nil)
            },
            "strftime_now": TemplateCallable("strftime_now") { [unowned evaluator] arguments in
                let format = try arguments.bind("strftime_now", [("format", nil)])[0]
                guard case .string(let pattern) = format else { throw TemplateError.runtime("strftime_now() argument must be str") }
                return .string(try strftime(pattern, evaluator.now))
            },
            "namespace": TemplateCallable("namespace") { arguments in
                let namespace = TemplateNamespace()
                for value in arguments.positional {
                    guard case .dict(let dict) = value else { throw TemplateError.runtime("namespace() takes a dict or keyword arguments") }
                    for (key, item) in dict.items { try setNamespaceAttribute(namespace, key, item) }
                }
                for (key, value) in arguments.keyword { try setNamespaceAttribute(namespace, .string(key), value) }
                return .namespace(namespace)
            },
            "dict": TemplateCallable("dict") { arguments in
                var dict = TemplateDict()
                guard arguments.positional.count <= 1 else { throw TemplateError.runtime("dict expected at most 1 argument") }
                if let source = arguments.positional.first {
                    switch source {
                    case .dict(let other): for (key, value) in other.items { try dict.set(key, value) }
                    default:
                        for pair in try iterate(source) {
                            let parts = try iterate(pair)
                            guard parts.count == 2 else { throw TemplateError.runtime("dictionary update sequence element has length \(parts.count); 2 is required") }
                            try dict.set(parts[0], parts[1])
                        }
                    }
                }
                for (key, value) in arguments.keyword { try dict.set(.string(key), value) }
                return .dict(dict)
            },
            "range": TemplateCallable("range") { arguments in
                guard arguments.keyword.isEmpty, (1...3).contains(arguments.positional.count) else {
                    throw TemplateError.runtime("range expected 1 to 3 integer arguments")
                }
                let numbers = try arguments.positional.map { value -> Int in
                    guard let number = value.asInt else { throw TemplateError.runtime("'\(value.typeName)' object cannot be interpreted as an integer") }
                    return number
                }
                let (start, stop, step) = numbers.count == 1 ? (0, numbers[0], 1) : (numbers[0], numbers[1], numbers.count == 3 ? numbers[2] : 1)
                guard step != 0 else { throw TemplateError.runtime("range() arg 3 must not be zero") }
                let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
                guard count <= 100_000 else { throw TemplateError.runtime("range too big, maximum size for range is 100000") }
                return .list((0..<count).map { .int(start + $0 * step) })
            },
        ]
    }

    private static func setNamespaceAttribute(_ namespace: TemplateNamespace, _ key: TemplateValue, _ value: TemplateValue) throws {
        if case .string(let name) = key, name.hasPrefix("_") {
            throw TemplateError.runtime("chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(name)'")
        }
        try namespace.attributes.set(key, value)
    }

    // MARK: Attribute and item access (jinja2's sandboxed getattr/getitem)

    private static let pythonStringMethods: Set<String> = [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map",
        "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
        "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
        "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
    ]
    private static let pythonDictMethods: Set<String> = ["clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values"]
    private static let pythonListMethods: Set<String> = ["append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"]
    private static let mutatingMethods: Set<String> = ["append", "clear", "extend", "insert", "pop", "popitem", "remove", "reverse", "setdefault", "sort", "update"]

    /// `value.name`: Python attributes (methods) first, then the item `value['name']`, else Undefined.
    static func attribute(of value: TemplateValue, _ name: String) throws -> TemplateValue {
        switch value {
        case .undefined(let what):
            throw TemplateError.runtime(what)
        case .string(let text):
            if pythonStringMethods.contains(name) { return .callable(try stringMethod(text, name)) }
        case .dict(let dict):
            if pythonDictMethods.contains(name) { return .callable(try dictMethod(dict, name)) }
            if let item = dict.get(name) { return item }
            return .undefined("'dict object' has no attribute '\(name)'")
        case .list, .tuple:
            if pythonListMethods.contains(name) {
                if mutatingMethods.contains(name) { throw TemplateError.runtime("access to the list method '\(name)' is not allowed: the sandbox is immutable") }
                throw TemplateError.unsupported("list method .\(name)()")
            }
        case .namespace(let namespace):
            if let item = namespace.attributes.get(name) { return item }
            return .undefined("'Namespace' object has no attribute '\(name)'")
        case .loop(let loop):
            if let item = loop.attribute(name) { return item }
            if name == "changed" { throw TemplateError.unsupported("loop.changed") }
        default:
            break
        }
        return .undefined("'\(value.typeName) object' has no attribute '\(name)'")
    }

    /// `value[key]`: the item first, then (for string keys) the attribute, else Undefined.
    static func item(of value: TemplateValue, _ key: TemplateValue) throws -> TemplateValue {
        switch value {
        case .undefined(let what):
            throw TemplateError.runtime(what)
        case .list(let items), .tuple(let items):
            if let index = key.asInt {
                let position = index < 0 ? index + items.count : index
                return items.indices.contains(position) ? items[position] : .undefined("list index out of range")
            }
        case .string(let text):
            if let index = key.asInt {
                let scalars = Array(text.unicodeScalars)
                let position = index < 0 ? index + scalars.count : index
                return scalars.indices.contains(position) ? .string(String(scalars[position])) : .undefined("string index out of range")
            }
        case .dict(let dict):
            if let item = try? dict.get(key) { return item }
            if case .string(let name) = key, pythonDictMethods.contains(name) { return .callable(try dictMethod(dict, name)) }
            return .undefined("'dict object' has no attribute \(try pythonRepr(key))")
        case .namespace, .loop:
            break
        default:
            return .undefined("'\(value.typeName) object' has no attribute \(try pythonRepr(key))")
        }
        if case .string(let name) = key { return try attribute(of: value, name) }
        return .undefined("'\(value.typeName) object' has no item \(try pythonRepr(key))")
    }

    /// `value[start:stop:step]` with Python's clamping rules.
    static func slice(_ value: TemplateValue, start: TemplateValue?, stop: TemplateValue?, step: TemplateValue?) throws -> TemplateValue {
        func bound(_ value: TemplateValue?) throws -> Int?? {
            guard let value, !value.isNone else { return .some(nil) }
            guard let number = value.asInt else { return nil }
            return .some(number)
        }
        guard let first = try bound(start), let last = try bound(stop), let stride = try bound(step) else {
            throw TemplateError.runtime("slice indices must be integers or None or have an __index__ method")
        }
        let indices = { (count: Int) throws -> [Int] in
            let step = stride ?? 1
            guard step != 0 else { throw TemplateError.runtime("slice step cannot be zero") }
            let (lower, upper) = step > 0 ? (0, count) : (-1, count - 1)
            func clamp(_ index: Int?, _ fallback: Int) -> Int {
                guard var index else { return fallback }
                if index < 0 {
                    index += count
                    return Swift.max(index, lower)
                }
                return Swift.min(index, upper)
            }
            var position = clamp(first, step > 0 ? lower : upper)
            let end = clamp(last, step > 0 ? upper : lower)
            var out: [Int] = []
            while step > 0 ? position < end : position > end {
                out.append(position)
                position += step
            }
            return out
        }
        // Jinja compiles slices to a plain Python subscript (not its forgiving getitem), so slicing
        // anything but a sequence fails.
        switch value {
        case .undefined(let what): throw TemplateError.runtime(what)
        case .list(let items): return .list(try indices(items.count).map { items[$0] })
        case .tuple(let items): return .tuple(try indices(items.count).map { items[$0] })
        case .string(let text):
            let scalars = Array(text.unicodeScalars)
            var view = String.UnicodeScalarView()
            for index in try indices(scalars.count) { view.append(scalars[index]) }
            return .string(String(view))
        case .dict:
            throw TemplateError.runtime("unhashable type: 'slice'")
        default:
            throw TemplateError.runtime("'\(value.typeName)' object is not subscriptable")
        }
    }

    // MARK: Operators

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

    // MARK: Tests

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

    // MARK: Filters

    static func filter(_ name: String, _ value: TemplateValue, _ arguments: TemplateArguments) throws -> TemplateValue {
        switch name {
        case "abs":
            _ = try arguments.bind(name, [])
            if let number = value.asInt { return .int(abs(number)) }
            if case .float(let number) = value { return .float(abs(number)) }
            throw TemplateError.runtime("bad operand type for abs(): '\(value.typeName)'")
        case "attr":
            let field = try arguments.bind(name, [("name", nil)])[0]
            return try attribute(of: value, try pythonStr(field))
        case "capitalize":
            _ = try arguments.bind(name, [])
            let scalars = Array(try pythonStr(value).unicodeScalars)
            guard let first = scalars.first else { return .string("") }
            return .string(String(first).uppercased() + String(String.UnicodeScalarView(scalars.dropFirst())).lowercased())
        case "count", "length":
            _ = try arguments.bind(name, [])
            return .int(try length(value))
        case "d", "default":
            let bound = try arguments.bind(name, [("default_value", .string("")), ("boolean", .bool(false))])
            if value.isUndefined || (bound[1].isTruthy && !value.isTruthy) { return bound[0] }
            return value
        case "first":
            _ = try arguments.bind(name, [])
            return try iterate(value).first ?? .undefined("no first item, sequence was empty")
        case "last":
            _ = try arguments.bind(name, [])
            return try iterate(value).last ?? .undefined("no last item, sequence was empty")
        case "float":
            let fallback = try arguments.bind(name, [("default", .float(0))])[0]
            switch value {
            case .float: return value
            case .int, .bool: return .float(value.asDouble!)
            case .string(let text): return parsePythonFloat(text).map { .float($0) } ?? fallback
            case .undefined(let what): throw TemplateError.runtime(what)
            default: return fallback
            }
        case "int":
            let bound = try arguments.bind(name, [("default", .int(0)), ("base", .int(10))])
            switch value {
            case .int, .bool: return .int(value.asInt!)
            case .float(let number):
                return try truncatedInt(number) ?? bound[0]
            case .string(let text):
                if let number = parsePythonInt(text, base: bound[1].asInt ?? 10) { return .int(number) }
                if let number = parsePythonFloat(text) { return try truncatedInt(number) ?? bound[0] }
                return bound[0]
            case .undefined(let what): throw TemplateError.runtime(what)
            default: return bound[0]
            }
        case "indent":
            let bound = try arguments.bind(name, [("width", .int(4)), ("first", .bool(false)), ("blank", .bool(false))])
            let indentation: String
            if case .string(let text) = bound[0] { indentation = text } else if let width = bound[0].asInt {
                indentation = String(repeating: " ", count: Swift.max(0, width))
            } else { throw TemplateError.runtime("indent width must be an int or a str") }
            // Jinja appends a newline first (`s += "\n"`, so only strings work), then splits with str.splitlines().
            guard case .string(let text) = value else {
                if case .undefined(let what) = value { throw TemplateError.runtime(what) }
                throw TemplateError.runtime("unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
            }
            let lines = splitLines(text + "\n")
            var result: String
            if bound[2].isTruthy {
                result = lines.joined(separator: "\n" + indentation)
            } else {
                result = lines.first ?? ""
                if lines.count > 1 {
                    result += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if bound[1].isTruthy { result = indentation + result }
            return .string(result)
        case "items":
            _ = try arguments.bind(name, [])
            switch value {
            case .undefined: return .list([])
            case .dict(let dict): return .list(dict.items.map { .tuple([$0.0, $0.1]) })
            default: throw TemplateError.runtime("can only get item pairs from a mapping")
            }
        case "join":
            let bound = try arguments.bind(name, [("d", .string("")), ("attribute", .null)])
            var items = try iterate(value)
            if !bound[1].isNone { items = try items.map { try attributePath($0, bound[1]) } }
            return .string(try items.map(pythonStr).joined(separator: try pythonStr(bound[0])))
        case "list":
            _ = try arguments.bind(name, [])
            return .list(try iterate(value))
        case "lower":
            _ = try arguments.bind(name, [])
            return .string(try pythonStr(value).lowercased())
        case "upper":
            _ = try arguments.bind(name, [])
            return .string(try pythonStr(value).uppercased())
        case "map":
            // Jinja's map/select/reject only iterate a truthy value: `false|map(...)` is empty.
            return .list(try mapFilter(value.isTruthy ? try iterate(value) : [], arguments))
        case "max", "min":
            let bound = try arguments.bind(name, [("case_sensitive", .bool(false)), ("attribute", .null)])
            let items = try iterate(value)
            guard var best = items.first else { return .undefined("no \(name) item, sequence was empty") }
            let key = { (item: TemplateValue) throws -> TemplateValue in
                let field = bound[1].isNone ? item : try attributePath(item, bound[1])
                return bound[0].isTruthy ? field : ignoreCase(field)
            }
            for item in items.dropFirst() {
                let order = try pythonCompare(try key(item), try key(best))
                if name == "max" ? order > 0 : order < 0 { best = item }
            }
            return best
        case "reject", "select":
            let keep = name == "select"
            return .list(try (value.isTruthy ? try iterate(value) : []).filter { item in
                try selectTest(item, arguments.positional, arguments.keyword, filterName: name) == keep
            })
        case "rejectattr", "selectattr":
            guard let field = arguments.positional.first else { throw TemplateError.runtime("\(name)() needs an attribute name") }
            let keep = name == "selectattr"
            return .list(try (value.isTruthy ? try iterate(value) : []).filter { item in
                try selectTest(try attributePath(item, field), Array(arguments.positional.dropFirst()), arguments.keyword, filterName: name) == keep
            })
        case "replace":
            let bound = try arguments.bind(name, [("old", nil), ("new", nil), ("count", .null)])
            let count = bound[2].isNone ? -1 : (bound[2].asInt ?? -1)
            return .string(replaceScalars(try pythonStr(value), try pythonStr(bound[0]), try pythonStr(bound[1]), count: count))
        case "reverse":
            _ = try arguments.bind(name, [])
            if case .string(let text) = value { return .string(String(String.UnicodeScalarView(text.unicodeScalars.reversed()))) }
            return .list(try iterate(value).reversed())
        case "round":
            let bound = try arguments.bind(name, [("precision", .int(0)), ("method", .string("common"))])
            guard let number = value.asDouble, let precision = bound[0].asInt else { throw TemplateError.runtime("round needs a number") }
            let scale = pow(10, Double(precision))
            switch bound[1].asString {
            case "common":
                // Python's round(): halves go to the even neighbour, and an int stays an int.
                if let whole = value.asInt, precision >= 0 { return .int(whole) }
                return .float((number * scale).rounded(.toNearestOrEven) / scale)
            case "ceil": return .float((number * scale).rounded(.up) / scale)
            case "floor": return .float((number * scale).rounded(.down) / scale)
            default: throw TemplateError.runtime("method must be common, ceil or floor")
            }
        case "safe":
            _ = try arguments.bind(name, [])
            return .string(try pythonStr(value))
        case "sort":
            let bound = try arguments.bind(name, [("reverse", .bool(false)), ("case_sensitive", .bool(false)), ("attribute", .null)])
            let keyed = try iterate(value).map { item -> (TemplateValue, TemplateValue) in
                let field = bound[2].isNone ? item : try attributePath(item, bound[2])
                return (bound[1].isTruthy ? field : ignoreCase(field), item)
            }
            var failure: Error?
            let sorted = keyed.enumerated().sorted { a, b in  // stable, like Python's sort
                do {
                    let order = try pythonCompare(a.element.0, b.element.0)
                    if order != 0 { return bound[0].isTruthy ? order > 0 : order < 0 }
                } catch { failure = error }
                return a.offset < b.offset
            }
            if let failure { throw failure }
            return .list(sorted.map { $0.element.1 })
        case "string":
            _ = try arguments.bind(name, [])
            return .string(try pythonStr(value))
        case "sum":
            let bound = try arguments.bind(name, [("attribute", .null), ("start", .int(0))])
            var total = bound[1]
            for item in try iterate(value) {
                total = try binary("+", total, bound[0].isNone ? item : try attributePath(item, bound[0]))
            }
            return total
        case "title":
            _ = try arguments.bind(name, [])
            return .string(jinjaTitle(try pythonStr(value)))
        case "tojson":
            let bound = try arguments.bind(name, [("ensure_ascii", .bool(false)), ("indent", .null), ("separators", .null), ("sort_keys", .bool(false))])
            var json = PythonJSON()
            json.ensureASCII = bound[0].isTruthy
            switch bound[1] {
            case .null: break
            case .string(let text): json.indent = text
            default:
                guard let width = bound[1].asInt else { throw TemplateError.runtime("tojson indent must be an int or a str") }
                json.indent = String(repeating: " ", count: Swift.max(0, width))
            }
            if json.indent != nil { json.itemSeparator = "," }
            switch bound[2] {
            case .null: break
            case .list(let parts), .tuple(let parts):
                guard parts.count == 2, let item = parts[0].asString, let key = parts[1].asString else {
                    throw TemplateError.runtime("tojson separators must be two strings")
                }
                json.itemSeparator = item
                json.keySeparator = key
            default: throw TemplateError.runtime("tojson separators must be two strings")
            }
            json.sortKeys = bound[3].isTruthy
            return .string(try json.dumps(value))
        case "trim":
            let chars = try arguments.bind(name, [("chars", .null)])[0]
            return .string(pythonStrip(try pythonStr(value), chars: chars.isNone ? nil : try pythonStr(chars), left: true, right: true))
        case "unique":
            let bound = try arguments.bind(name, [("case_sensitive", .bool(false)), ("attribute", .null)])
            // Jinja keeps a set of the keys seen, so items must be hashable (dicts and lists are not).
            var seen = Set<TemplateDict.HashKey>()
            var out: [TemplateValue] = []
            for item in try iterate(value) {
                let field = bound[1].isNone ? item : try attributePath(item, bound[1])
                if seen.insert(try TemplateDict.HashKey(bound[0].isTruthy ? field : ignoreCase(field))).inserted { out.append(item) }
            }
            return .list(out)
        default:
            throw TemplateError.unsupported("filter \"\(name)\"")
        }
    }

    /// Python's int(float): NaN and infinities fail (the filter then gives its default); Python
    /// would give a big integer past 64 bits, which is refused rather than rendered wrong.
    private static func truncatedInt(_ number: Double) throws -> TemplateValue? {
        guard number.isFinite else { return nil }
        guard let whole = Int(exactly: number.rounded(.towardZero)) else { throw TemplateError.unsupported("integer beyond 64 bits") }
        return .int(whole)
    }

    private static func length(_ value: TemplateValue) throws -> Int {
        switch value {
        case .string(let text): return text.unicodeScalars.count
        case .list(let items), .tuple(let items): return items.count
        case .dict(let dict): return dict.count
        case .undefined: return 0
        default: throw TemplateError.runtime("object of type '\(value.typeName)' has no len()")
        }
    }

    /// Jinja's make_attrgetter: "a.b.0" looks up each part as an item (integers as indices).
    private static func attributePath(_ item: TemplateValue, _ path: TemplateValue) throws -> TemplateValue {
        if let index = path.asInt { return try self.item(of: item, .int(index)) }
        var current = item
        for part in try pythonStr(path).split(separator: ".", omittingEmptySubsequences: false) {
            current = try self.item(of: current, Int(part).map { .int($0) } ?? .string(String(part)))
        }
        return current
    }

    private static func ignoreCase(_ value: TemplateValue) -> TemplateValue {
        if case .string(let text) = value { return .string(text.lowercased()) }
        return value
    }

    /// select/reject: with no test name, the item's truth; otherwise the named test.
    private static func selectTest(_ value: TemplateValue, _ positional: [TemplateValue], _ keyword: [(String, TemplateValue)], filterName: String) throws -> Bool {
        guard keyword.isEmpty else { throw TemplateError.unsupported("keyword arguments to \(filterName)") }
        guard let testName = positional.first else { return value.isTruthy }
        guard case .string(let name) = testName, testNames.contains(name) else {
            throw TemplateError.unsupported("test \(try pythonRepr(testName)) in \(filterName)")
        }
        return try test(name, value, Array(positional.dropFirst()))
    }

    private static func mapFilter(_ items: [TemplateValue], _ arguments: TemplateArguments) throws -> [TemplateValue] {
        if arguments.positional.isEmpty {
            // map(attribute='x', default=...)
            var field: TemplateValue?
            var fallback: TemplateValue?
            for (key, value) in arguments.keyword {
                switch key {
                case "attribute": field = value
                case "default": fallback = value
                default: throw TemplateError.runtime("map() got an unexpected keyword argument '\(key)'")
                }
            }
            guard let field else { throw TemplateError.runtime("map() needs a filter name or attribute=") }
            return try items.map { item in
                let value = try attributePath(item, field)
                if value.isUndefined, let fallback { return fallback }
                return value
            }
        }
        guard case .string(let filterName) = arguments.positional[0], filterNames.contains(filterName) else {
            throw TemplateError.unsupported("filter \(try pythonRepr(arguments.positional[0])) in map")
        }
        var rest = arguments
        rest.positional.removeFirst()
        return try items.map { try filter(filterName, $0, rest) }
    }

    // MARK: Python string methods

    private static func stringMethod(_ text: String, _ name: String) throws -> TemplateCallable {
        let function = "str." + name
        func body(_ parameters: [(String, TemplateValue?)], _ run: @escaping ([TemplateValue]) throws -> TemplateValue) -> TemplateCallable {
            TemplateCallable(function) { arguments in try run(try arguments.bind(function, parameters)) }
        }
        func optionalString(_ value: TemplateValue) throws -> String? {
            if value.isNone { return nil }
            guard case .string(let text) = value else { throw TemplateError.runtime("\(function)() argument must be str or None, not \(value.typeName)") }
            return text
        }
        func string(_ value: TemplateValue) throws -> String {
            guard case .string(let text) = value else { throw TemplateError.runtime("\(function)() argument must be str, not \(value.typeName)") }
            return text
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            return body([("chars", .null)]) { arguments in
                .string(pythonStrip(text, chars: try optionalString(arguments[0]), left: name != "rstrip", right: name != "lstrip"))
            }
        case "split", "rsplit":
            return body([("sep", .null), ("maxsplit", .int(-1))]) { arguments in
                let separator = try optionalString(arguments[0])
                guard let limit = arguments[1].asInt else { throw TemplateError.runtime("maxsplit must be an integer") }
                return .list(try pythonSplit(text, separator: separator, maxSplit: limit, fromRight: name == "rsplit").map { .string($0) })
            }
        case "splitlines":
            return body([("keepends", .bool(false))]) { arguments in
                guard !arguments[0].isTruthy else { throw TemplateError.unsupported("str.splitlines(keepends=True)") }
                return .list(splitLines(text).map { .string($0) })
            }
        case "startswith", "endswith":
            return body([("prefix", nil)]) { arguments in
                let candidates: [TemplateValue]
                if case .tuple(let items) = arguments[0] { candidates = items } else { candidates = [arguments[0]] }
                let scalars = Array(text.unicodeScalars)
                for candidate in candidates {
                    let affix = Array(try string(candidate).unicodeScalars)
                    guard affix.count <= scalars.count else { continue }
                    if name == "startswith" ? scalars.starts(with: affix) : Array(scalars.suffix(affix.count)) == affix { return .bool(true) }
                }
                return .bool(false)
            }
        case "replace":
            return body([("old", nil), ("new", nil), ("count", .int(-1))]) { arguments in
                guard let count = arguments[2].asInt else { throw TemplateError.runtime("count must be an integer") }
                return .string(replaceScalars(text, try string(arguments[0]), try string(arguments[1]), count: count))
            }
        case "upper": return body([]) { _ in .string(text.uppercased()) }
        case "lower": return body([]) { _ in .string(text.lowercased()) }
        case "title": return body([]) { _ in .string(pythonTitle(text)) }
        case "capitalize":
            return body([]) { _ in
                let scalars = Array(text.unicodeScalars)
                guard let first = scalars.first else { return .string("") }
                return .string(String(first).uppercased() + String(String.UnicodeScalarView(scalars.dropFirst())).lowercased())
            }
        case "find", "rfind", "index", "rindex", "count":
            return body([("sub", nil)]) { arguments in
                let needle = Array(try string(arguments[0]).unicodeScalars)
                let haystack = Array(text.unicodeScalars)
                if name == "count" {
                    if needle.isEmpty { return .int(haystack.count + 1) }
                    var total = 0
                    var from = 0
                    while let found = findScalars(needle, in: haystack, from: from) {
                        total += 1
                        from = found + needle.count
                    }
                    return .int(total)
                }
                var found: Int?
                if name.hasPrefix("r") {
                    var from = 0
                    while let next = findScalars(needle, in: haystack, from: from) {
                        found = next
                        from = next + 1
                        if from > haystack.count { break }
                    }
                } else {
                    found = findScalars(needle, in: haystack, from: 0)
                }
                if let found { return .int(found) }
                if name.hasSuffix("index") { throw TemplateError.runtime("substring not found") }
                return .int(-1)
            }
        case "join":
            return body([("iterable", nil)]) { arguments in
                .string(try iterate(arguments[0]).map { item -> String in
                    guard case .string(let part) = item else { throw TemplateError.runtime("sequence item: expected str instance, \(item.typeName) found") }
                    return part
                }.joined(separator: text))
            }
        case "removeprefix", "removesuffix":
            return body([("affix", nil)]) { arguments in
                let scalars = Array(text.unicodeScalars)
                let affix = Array(try string(arguments[0]).unicodeScalars)
                if name == "removeprefix", scalars.starts(with: affix) { return .string(String(String.UnicodeScalarView(scalars.dropFirst(affix.count)))) }
                if name == "removesuffix", !affix.isEmpty, Array(scalars.suffix(affix.count)) == affix {
                    return .string(String(String.UnicodeScalarView(scalars.dropLast(affix.count))))
                }
                return .string(text)
            }
        case "isspace":
            return body([]) { _ in .bool(!text.isEmpty && text.unicodeScalars.allSatisfy(isPythonWhitespace)) }
        case "isdigit", "isdecimal":
            return body([]) { _ in .bool(!text.isEmpty && text.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal || (name == "isdigit" && $0.properties.numericType == .digit) }) }
        case "isalpha":
            return body([]) { _ in
                .bool(!text.isEmpty && text.unicodeScalars.allSatisfy {
                    [.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter].contains($0.properties.generalCategory)
                })
            }
        case "islower", "isupper":
            return body([]) { _ in
                let cased = text.unicodeScalars.filter { $0.properties.isLowercase || $0.properties.isUppercase }
                return .bool(!cased.isEmpty && cased.allSatisfy { name == "islower" ? $0.properties.isLowercase : $0.properties.isUppercase })
            }
        default:
            throw TemplateError.unsupported("string method .\(name)()")
        }
    }

    private static func dictMethod(_ dict: TemplateDict, _ name: String) throws -> TemplateCallable {
        let function = "dict." + name
        switch name {
        case "get":
            return TemplateCallable(function) { arguments in
                let bound = try arguments.bind(function, [("key", nil), ("default", .null)])
                return try dict.get(bound[0]) ?? bound[1]
            }
        case "items":
            return TemplateCallable(function) { arguments in
                _ = try arguments.bind(function, [])
                return .list(dict.items.map { .tuple([$0.0, $0.1]) })
            }
        case "keys":
            return TemplateCallable(function) { arguments in
                _ = try arguments.bind(function, [])
                return .list(dict.keys)
            }
        case "values":
            return TemplateCallable(function) { arguments in
                _ = try arguments.bind(function, [])
                return .list(dict.values)
            }
        default:
            if mutatingMethods.contains(name) { throw TemplateError.runtime("access to the dict method '\(name)' is not allowed: the sandbox is immutable") }
            throw TemplateError.unsupported("dict method .\(name)()")
        }
    }

    // MARK: Python string algorithms (on Unicode scalars, as Python's str works on code points)

    static func findScalars(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from start: Int) -> Int? {
        guard needle.count <= haystack.count - start else { return needle.isEmpty && start <= haystack.count ? start : nil }
        if needle.isEmpty { return start }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0], haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    static func pythonStrip(_ text: String, chars: String?, left: Bool, right: Bool) -> String {
        let scalars = Array(text.unicodeScalars)
        let set = chars.map { Set($0.unicodeScalars) }
        let strip = { (scalar: Unicode.Scalar) in set.map { $0.contains(scalar) } ?? isPythonWhitespace(scalar) }
        var start = 0
        var end = scalars.count
        if left { while start < end, strip(scalars[start]) { start += 1 } }
        if right { while end > start, strip(scalars[end - 1]) { end -= 1 } }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }

    static func pythonSplit(_ text: String, separator: String?, maxSplit: Int, fromRight: Bool) throws -> [String] {
        var scalars = Array(text.unicodeScalars)
        let limit = maxSplit < 0 ? Int.max : maxSplit
        func make(_ part: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(part)) }
        guard let separator else {
            // Runs of whitespace separate; leading/trailing whitespace gives no empty parts.
            if fromRight { scalars.reverse() }
            var parts: [String] = []
            var index = 0
            while index < scalars.count {
                while index < scalars.count, isPythonWhitespace(scalars[index]) { index += 1 }
                guard index < scalars.count else { break }
                if parts.count == limit {
                    var end = scalars.count
                    while end > index, isPythonWhitespace(scalars[end - 1]) { end -= 1 }
                    parts.append(make(scalars[index..<end]))
                    break
                }
                let start = index
                while index < scalars.count, !isPythonWhitespace(scalars[index]) { index += 1 }
                parts.append(make(scalars[start..<index]))
            }
            if fromRight { return parts.reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) } }
            return parts
        }
        let needle = Array(separator.unicodeScalars)
        guard !needle.isEmpty else { throw TemplateError.runtime("empty separator") }
        if fromRight {
            let reversedParts = try pythonSplit(String(String.UnicodeScalarView(scalars.reversed())),
                                                separator: String(String.UnicodeScalarView(needle.reversed())), maxSplit: maxSplit, fromRight: false)
            return reversedParts.reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
        }
        var parts: [String] = []
        var start = 0
        while parts.count < limit, let found = findScalars(needle, in: scalars, from: start) {
            parts.append(make(scalars[start..<found]))
            start = found + needle.count
        }
        parts.append(make(scalars[start...]))
        return parts
    }

    /// Python's str.splitlines(): every line boundary Python knows, \r\n as one; no trailing empty line.
    static func splitLines(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var lines: [String] = []
        var start = 0
        var index = 0
        while index < scalars.count {
            switch scalars[index].value {
            case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                lines.append(String(String.UnicodeScalarView(scalars[start..<index])))
                if scalars[index] == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" { index += 1 }
                start = index + 1
            default:
                break
            }
            index += 1
        }
        if start < scalars.count { lines.append(String(String.UnicodeScalarView(scalars[start...]))) }
        return lines
    }

    static func replaceScalars(_ text: String, _ old: String, _ new: String, count: Int) -> String {
        let scalars = Array(text.unicodeScalars)
        let needle = Array(old.unicodeScalars)
        let replacement = Array(new.unicodeScalars)
        var limit = count < 0 ? Int.max : count
        var out: [Unicode.Scalar] = []
        if needle.isEmpty {
            // Python inserts `new` before every character and at the end.
            for scalar in scalars {
                if limit > 0 { out += replacement; limit -= 1 }
                out.append(scalar)
            }
            if limit > 0 { out += replacement }
            return String(String.UnicodeScalarView(out))
        }
        var start = 0
        while limit > 0, let found = findScalars(needle, in: scalars, from: start) {
            out += scalars[start..<found]
            out += replacement
            start = found + needle.count
            limit -= 1
        }
        out += scalars[start...]
        return String(String.UnicodeScalarView(out))
    }

    /// Python's str.title(): a letter after a cased letter is lowered, any other letter is uppered.
    static func pythonTitle(_ text: String) -> String {
        var out = ""
        var previousCased = false
        for scalar in text.unicodeScalars {
            let properties = scalar.properties
            if properties.isCased {
                out += previousCased ? String(scalar).lowercased() : (properties.titlecaseMapping)
                previousCased = true
            } else {
                out.unicodeScalars.append(scalar)
                previousCased = false
            }
        }
        return out
    }

    /// Jinja's `title` filter: split before runs of `-`, whitespace and opening brackets, then each
    /// piece gets its first character uppered and the rest lowered.
    static func jinjaTitle(_ text: String) -> String {
        let isBoundary = { (scalar: Unicode.Scalar) in isPythonWhitespace(scalar) || "-({[<".unicodeScalars.contains(scalar) }
        var pieces: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        var currentIsBoundary = false
        for scalar in text.unicodeScalars {
            let boundary = isBoundary(scalar)
            if !current.isEmpty && boundary != currentIsBoundary {
                pieces.append(current)
                current = []
            }
            currentIsBoundary = boundary
            current.append(scalar)
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces.map { piece in
            String(piece[0]).uppercased() + String(String.UnicodeScalarView(piece.dropFirst())).lowercased()
        }.joined()
    }

    private static func parsePythonInt(_ text: String, base: Int) -> Int? {
        var body = pythonStrip(text, chars: nil, left: true, right: true)
        var negative = false
        if body.hasPrefix("-") || body.hasPrefix("+") {
            negative = body.hasPrefix("-")
            body.removeFirst()
        }
        var radix = base
        let lowered = body.lowercased()
        for (prefix, prefixRadix) in [("0x", 16), ("0o", 8), ("0b", 2)] where lowered.hasPrefix(prefix) && (base == prefixRadix || base == 0) {
            body.removeFirst(2)
            radix = prefixRadix
        }
        if radix == 0 { radix = 10 }
        guard !body.isEmpty, !body.hasPrefix("_"), !body.hasSuffix("_"), !body.contains("__") else { return nil }
        guard let magnitude = Int(body.replacingOccurrences(of: "_", with: ""), radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }

    private static func parsePythonFloat(_ text: String) -> Double? {
        let body = pythonStrip(text, chars: nil, left: true, right: true).lowercased()
        switch body {
        case "nan", "+nan", "-nan": return .nan
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default:
            guard !body.isEmpty, body.allSatisfy({ "0123456789.e+-_".contains($0) }) else { return nil }
            return Double(body.replacingOccurrences(of: "_", with: ""))
        }
    }

    // MARK: strftime

    private static let monthNames = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    private static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// C strftime as Python's datetime.strftime gives it on Linux (C locale), in the local time zone.
    static func strftime(_ format: String, _ date: Date) throws -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let (year, month, day) = (parts.year!, parts.month!, parts.day!)
        let (hour, minute, second, weekday) = (parts.hour!, parts.minute!, parts.second!, parts.weekday! - 1)
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func pad(_ number: Int, _ width: Int = 2) -> String {
            let digits = String(number)
            return String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
        }
        var out = ""
        var scalars = format.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar == "%" else { out.unicodeScalars.append(scalar); continue }
            guard var code = scalars.next() else { out += "%"; break }
            var unpadded = false
            if code == "-" {
                unpadded = true
                guard let next = scalars.next() else { throw TemplateError.unsupported("strftime format \"%-\"") }
                code = next
            }
            func number(_ value: Int, _ width: Int = 2) -> String { unpadded ? String(value) : pad(value, width) }
            switch code {
            case "d": out += number(day)
            case "e": out += unpadded ? String(day) : (day < 10 ? " \(day)" : String(day))
            case "m": out += number(month)
            case "Y": out += String(year)
            case "y": out += number(year % 100)
            case "B": out += monthNames[month - 1]
            case "b", "h": out += String(monthNames[month - 1].prefix(3))
            case "A": out += weekdayNames[weekday]
            case "a": out += String(weekdayNames[weekday].prefix(3))
            case "H": out += number(hour)
            case "I": out += number(hour % 12 == 0 ? 12 : hour % 12)
            case "M": out += number(minute)
            case "S": out += number(second)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "j": out += number(dayOfYear, 3)
            case "F": out += "\(year)-\(pad(month))-\(pad(day))"
            case "T": out += "\(pad(hour)):\(pad(minute)):\(pad(second))"
            case "%": out += "%"
            default: throw TemplateError.unsupported("strftime format \"%\(unpadded ? "-" : "")\(Character(code))\"")
            }
        }
        return out
    }
}

extension TemplateValue {
    fileprivate var isListLike: Bool { if case .list = self { return true } else { return false } }
}
