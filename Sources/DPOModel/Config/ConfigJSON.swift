import DPOSupport
import Foundation

/// The keys of a `config.json`, read with errors that name the file and the key. Architectures read
/// the keys only they have through it.
public struct ConfigJSON {
    public let values: [String: Any]
    public let path: String

    public init(_ values: [String: Any], path: String) {
        self.values = values
        self.path = path
    }

    public func fail(_ what: String) -> DPOError { DPOError.file(path, what) }

    public func has(_ key: String) -> Bool {
        guard let raw = values[key] else { return false }
        return !(raw is NSNull)
    }

    public func int(_ key: String, default value: Int? = nil) throws -> Int {
        guard let raw = values[key], !(raw is NSNull) else {
            if let value { return value }
            throw fail("missing \"\(key)\"")
        }
        guard let number = raw as? NSNumber, !isJSONBoolean(raw), number.doubleValue == number.doubleValue.rounded() else {
            throw fail("\"\(key)\" must be an integer")
        }
        return number.intValue
    }

    /// A number at `key` of `dict` (the top level when nil, or a nested object such as rope_parameters).
    public func double(_ key: String, in dict: [String: Any]? = nil, default value: Double? = nil) throws -> Double {
        guard let raw = (dict ?? values)[key], !(raw is NSNull) else {
            if let value { return value }
            throw fail("missing \"\(key)\"")
        }
        guard let number = raw as? NSNumber else { throw fail("\"\(key)\" must be a number") }
        return number.doubleValue
    }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        guard let raw = values[key], !(raw is NSNull) else { return value }
        guard isJSONBoolean(raw), let b = raw as? Bool else { throw fail("\"\(key)\" must be true or false") }
        return b
    }
}
