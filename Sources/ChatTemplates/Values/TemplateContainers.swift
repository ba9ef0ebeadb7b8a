import Foundation

/// A Python dict: insertion-ordered, keyed by hashable scalars (str, int, float, bool, None, tuples).
struct TemplateDict {
    private(set) var keys: [TemplateValue] = []
    private(set) var values: [TemplateValue] = []
    private var index: [HashKey: Int] = [:]

    init() {}

    init(_ entries: [(String, TemplateValue)]) {
        for (key, value) in entries { try! set(.string(key), value) }
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var items: [(TemplateValue, TemplateValue)] { Array(zip(keys, values)) }

    func get(_ key: TemplateValue) throws -> TemplateValue? {
        guard let position = index[try HashKey(key)] else { return nil }
        return values[position]
    }

    func get(_ key: String) -> TemplateValue? {
        index[.string(key)].map { values[$0] }
    }

    mutating func set(_ key: TemplateValue, _ value: TemplateValue) throws {
        let hash = try HashKey(key)
        if let position = index[hash] {
            values[position] = value
        } else {
            index[hash] = keys.count
            keys.append(key)
            values.append(value)
        }
    }

    /// Python hashing: 1, 1.0 and True are the same key; lists and dicts are unhashable.
    enum HashKey: Hashable {
        case null
        case int(Int)
        case float(Double)
        case string(String)
        case tuple([HashKey])

        init(_ value: TemplateValue) throws {
            switch value {
            case .null: self = .null
            case .bool(let flag): self = .int(flag ? 1 : 0)
            case .int(let number): self = .int(number)
            case .float(let number):
                if number.rounded() == number, let whole = Int(exactly: number) { self = .int(whole) } else { self = .float(number) }
            case .string(let text): self = .string(text)
            case .tuple(let items): self = .tuple(try items.map(HashKey.init))
            default: throw TemplateError.runtime("unhashable type: '\(value.typeName)'")
            }
        }
    }
}

/// `namespace(...)`: the one mutable object templates have, so it is a reference.
final class TemplateNamespace {
    var attributes = TemplateDict()
}

/// A built-in function, bound method or macro.
final class TemplateCallable {
    let name: String
    let body: (TemplateArguments) throws -> TemplateValue
    init(_ name: String, _ body: @escaping (TemplateArguments) throws -> TemplateValue) {
        self.name = name
        self.body = body
    }
}

/// Evaluated call arguments: positional then keyword, as Python passes them.
struct TemplateArguments {
    var positional: [TemplateValue] = []
    var keyword: [(String, TemplateValue)] = []

    /// Binds the arguments to a Python signature: parameter names with defaults (nil = required).
    /// Throws on too many, unknown or missing arguments, like Python would.
    func bind(_ function: String, _ parameters: [(String, TemplateValue?)]) throws -> [TemplateValue] {
        guard positional.count <= parameters.count else {
            throw TemplateError.runtime("\(function)() takes at most \(parameters.count) arguments (\(positional.count) given)")
        }
        var bound: [TemplateValue?] = parameters.map { $0.1 }
        var given = Array(repeating: false, count: parameters.count)
        for (position, value) in positional.enumerated() {
            bound[position] = value
            given[position] = true
        }
        for (name, value) in keyword {
            guard let position = parameters.firstIndex(where: { $0.0 == name }) else {
                throw TemplateError.runtime("\(function)() got an unexpected keyword argument '\(name)'")
            }
            guard !given[position] else { throw TemplateError.runtime("\(function)() got multiple values for argument '\(name)'") }
            bound[position] = value
            given[position] = true
        }
        return try bound.enumerated().map { position, value in
            guard let value else { throw TemplateError.runtime("\(function)() missing required argument '\(parameters[position].0)'") }
            return value
        }
    }
}

/// The `loop` variable of a for loop.
final class TemplateLoop {
    let items: [TemplateValue]
    var index0 = 0
    let depth0: Int
    init(items: [TemplateValue], depth0: Int) {
        self.items = items
        self.depth0 = depth0
    }

    func attribute(_ name: String) -> TemplateValue? {
        let length = items.count
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(length - index0)
        case "revindex0": return .int(length - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(depth0 + 1)
        case "depth0": return .int(depth0)
        case "previtem": return index0 > 0 ? items[index0 - 1] : .undefined("there is no previous item")
        case "nextitem": return index0 + 1 < length ? items[index0 + 1] : .undefined("there is no next item")
        case "cycle":
            return .callable(TemplateCallable("loop.cycle") { [unowned self] arguments in
                guard !arguments.positional.isEmpty else { throw TemplateError.runtime("no items for cycling given") }
                return arguments.positional[self.index0 % arguments.positional.count]
            })
        default: return nil
        }
    }
}
