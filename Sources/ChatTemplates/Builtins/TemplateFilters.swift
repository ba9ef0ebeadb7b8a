import Foundation

// Jinja's filters (`x | trim`, `items | map(attribute="name")`, ...), and transformers' `tojson`.
extension TemplateBuiltins {
    static let filterNames: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "first", "float", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round",
        "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper",
    ]

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
    static func truncatedInt(_ number: Double) throws -> TemplateValue? {
        guard number.isFinite else { return nil }
        guard let whole = Int(exactly: number.rounded(.towardZero)) else { throw TemplateError.unsupported("integer beyond 64 bits") }
        return .int(whole)
    }

    static func length(_ value: TemplateValue) throws -> Int {
        switch value {
        case .string(let text): return text.unicodeScalars.count
        case .list(let items), .tuple(let items): return items.count
        case .dict(let dict): return dict.count
        case .undefined: return 0
        default: throw TemplateError.runtime("object of type '\(value.typeName)' has no len()")
        }
    }

    /// Jinja's make_attrgetter: "a.b.0" looks up each part as an item (integers as indices).
    static func attributePath(_ item: TemplateValue, _ path: TemplateValue) throws -> TemplateValue {
        if let index = path.asInt { return try self.item(of: item, .int(index)) }
        var current = item
        for part in try pythonStr(path).split(separator: ".", omittingEmptySubsequences: false) {
            current = try self.item(of: current, Int(part).map { .int($0) } ?? .string(String(part)))
        }
        return current
    }

    static func ignoreCase(_ value: TemplateValue) -> TemplateValue {
        if case .string(let text) = value { return .string(text.lowercased()) }
        return value
    }

    /// select/reject: with no test name, the item's truth; otherwise the named test.
    static func selectTest(_ value: TemplateValue, _ positional: [TemplateValue], _ keyword: [(String, TemplateValue)], filterName: String) throws -> Bool {
        guard keyword.isEmpty else { throw TemplateError.unsupported("keyword arguments to \(filterName)") }
        guard let testName = positional.first else { return value.isTruthy }
        guard case .string(let name) = testName, testNames.contains(name) else {
            throw TemplateError.unsupported("test \(try pythonRepr(testName)) in \(filterName)")
        }
        return try test(name, value, Array(positional.dropFirst()))
    }

    static func mapFilter(_ items: [TemplateValue], _ arguments: TemplateArguments) throws -> [TemplateValue] {
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
}
