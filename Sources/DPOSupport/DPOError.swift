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

extension DPOError {
    /// Writes an error as the user sees it, the one place that does: `error: <message>` from a
    /// single process, `rank R: <message>` from one rank of a job, one line on stderr.
    public static func report(_ message: String, rank: Int? = nil) {
        let prefix = rank.map { "rank \($0): " } ?? "error: "
        Console.note(prefix + message + "\n")
    }
}
