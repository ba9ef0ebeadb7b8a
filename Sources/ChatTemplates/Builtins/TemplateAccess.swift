import Foundation

// Attribute and item access, as jinja2's sandboxed getattr and getitem.
extension TemplateBuiltins {
    // Attribute and item access (jinja2's sandboxed getattr/getitem)

    static let pythonStringMethods: Set<String> = [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map",
        "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
        "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
        "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
    ]
    static let pythonDictMethods: Set<String> = ["clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values"]
    static let pythonListMethods: Set<String> = ["append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"]
    static let mutatingMethods: Set<String> = ["append", "clear", "extend", "insert", "pop", "popitem", "remove", "reverse", "setdefault", "sort", "update"]

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
}
