import Foundation

/// A user-facing failure: one line that names the file (or key, tensor, line) and what is wrong.
/// Commands print `error: <message>` and exit non-zero; nothing else is printed.
public struct DPOError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// An error about one file: "<path>: <what>".
    public static func file(_ path: String, _ what: String) -> DPOError {
        DPOError("\(path): \(what)")
    }
}
