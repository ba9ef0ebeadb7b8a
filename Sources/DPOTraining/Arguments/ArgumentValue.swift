import DPOSupport
import Foundation

/// A value from YAML (typed) or a flag (text), read as the type a field needs. Text is read the way
/// YAML would read it, so `--beta 0.1` and `beta: 0.1` mean the same.
struct ArgumentValue {
    let raw: Any
    /// What the user typed to name it: `--beta` on the command line, `beta` in a file.
    let name: String
    let source: String

    init(_ raw: Any, name: String, source: String) {
        self.raw = raw
        self.name = name
        self.source = source
    }

    func fail(_ expected: String, _ hint: String = "") -> DPOError {
        DPOError("\(source): \(name) must be \(expected), got \(Self.describe(raw))\(hint)")
    }

    static func describe(_ value: Any) -> String {
        switch value {
        case let s as String: return "\"\(s)\""
        case is NSNull: return "null"
        case is [Any]: return "a list"
        case is [String: Any]: return "a mapping"
        default: return "\(value)"
        }
    }

    private var text: String? { (raw as? String)?.trimmingCharacters(in: .whitespaces) }

    /// null, ~, none or nothing: "not set" for the optional keys (None is how TRL users write it).
    /// So an optional path cannot be a file literally named "none" or "null"; write "./none".
    var isNull: Bool {
        if raw is NSNull { return true }
        guard let text else { return false }
        return ["", "~", "null", "none"].contains(text.lowercased())
    }

    func string() throws -> String {
        guard let s = raw as? String else { throw fail("text", raw is [Any] || raw is [String: Any] ? "" : " (put it in quotes)") }
        return s
    }

    func number() throws -> Double {
        let x: Double?
        switch raw {
        case let d as Double: x = d
        case let i as Int: x = Double(i)
        default: x = text.flatMap(Double.init)
        }
        guard let x, x.isFinite else { throw fail(x == nil ? "a number" : "a finite number") }
        return x
    }

    func integer() throws -> Int {
        switch raw {
        case let i as Int: return i
        case let d as Double:
            // 1e3 or 4.0 in a file mean a whole number; 0.5 steps do not.
            guard d.rounded() == d, let i = Int(exactly: d) else { throw fail("a whole number") }
            return i
        default:
            if let text, let i = Int(text) { return i }
            if let text, let d = Double(text), d.rounded() == d, let i = Int(exactly: d) { return i }
            throw fail("a whole number")
        }
    }

    func seed() throws -> UInt64 {
        if let i = raw as? Int, i >= 0 { return UInt64(i) }
        if let text, let s = UInt64(text) { return s }
        throw fail("a whole number of at least 0")
    }

    func bool() throws -> Bool {
        switch raw {
        case let b as Bool: return b
        case let i as Int where i == 0 || i == 1: return i == 1
        default:
            switch text?.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: throw fail("true or false")
            }
        }
    }

    /// A list, or one string with names separated by commas (how a flag gives a list).
    func names() throws -> [String] {
        let items: [Any]
        if let list = raw as? [Any] {
            items = list
        } else if let text {
            items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        } else {
            throw fail("a name or a list of names")
        }
        let names = try items.map { item -> String in
            guard let s = (item as? String)?.trimmingCharacters(in: .whitespaces), !s.isEmpty else {
                throw fail("a name or a list of names")
            }
            return s
        }
        guard !names.isEmpty else { throw fail("a name or a list of names") }
        return names
    }

    /// A list, one number, or one string of numbers separated by commas.
    func numbers() throws -> [Double] {
        let items: [Any]
        switch raw {
        case let list as [Any]: items = list
        case let text as String: items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        default: items = [raw]
        }
        guard !items.isEmpty else { throw fail("a list of numbers") }
        return try items.map { item in
            do {
                return try ArgumentValue(item, name: name, source: source).number()
            } catch {
                throw fail("a list of numbers")
            }
        }
    }
}
