import Foundation

// What templates can call, each written to give what jinja2 3.1 gives in transformers' sandbox:
//   TemplateBuiltins.swift   transformers' globals (raise_exception, strftime_now, namespace, dict)
//   TemplateAccess.swift     attribute and item access, slices
//   TemplateOperators.swift  operators, comparisons, `in`, iteration
//   TemplateTests.swift      tests (`is defined`, ...)
//   TemplateFilters.swift    filters (`| trim`, `| tojson`, ...)
//   PythonMethods.swift      str and dict methods
//   PythonText.swift         Python's string algorithms and strftime
// What is not here is refused: unknown filters and tests at parse time, unimplemented methods and
// globals when reached.

enum TemplateBuiltins {
    /// Jinja globals this renderer does not implement: referencing one fails instead of reading as undefined.
    static let unsupportedGlobals: Set<String> = ["cycler", "joiner", "lipsum"]


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

    static func setNamespaceAttribute(_ namespace: TemplateNamespace, _ key: TemplateValue, _ value: TemplateValue) throws {
        if case .string(let name) = key, name.hasPrefix("_") {
            throw TemplateError.runtime("chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(name)'")
        }
        try namespace.attributes.set(key, value)
    }
}
