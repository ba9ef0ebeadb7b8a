import Foundation

// Python's str and dict methods that templates call (`text.strip()`, `d.get("k")`, ...).
extension TemplateBuiltins {
    // Python string methods

    static func stringMethod(_ text: String, _ name: String) throws -> TemplateCallable {
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

    static func dictMethod(_ dict: TemplateDict, _ name: String) throws -> TemplateCallable {
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
}
