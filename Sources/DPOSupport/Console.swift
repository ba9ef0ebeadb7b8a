import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What dpo-dist writes to its standard streams, through write(2) rather than FileHandle (which
/// raises, and so crashes, when a write fails).
public enum Console {
    /// A closed pipe then gives EPIPE to a write instead of killing the process with SIGPIPE: a log
    /// reader that exits (`dpo-dist train ... | head`) must not end a run. Call first thing in main.
    public static func ignoreBrokenPipes() { signal(SIGPIPE, SIG_IGN) }

    /// A message for people on stderr. A failed write is ignored: losing a progress line must never
    /// end training.
    public static func note(_ text: String) { _ = writeAll(text, to: STDERR_FILENO) }

    /// Results on stdout (`score --output -`): a failed write is an error, the result would be lost.
    public static func output(_ text: String) throws {
        if let errno = writeAll(text, to: STDOUT_FILENO) {
            throw DPOError("standard output: cannot write the results (\(String(cString: strerror(errno))))")
        }
    }

    /// Writes all of `text` to `fd` (retrying short writes and interrupted calls); the errno of a
    /// failure, else nil.
    public static func writeAll(_ text: String, to fd: Int32) -> Int32? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { raw -> Int32? in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return n < 0 ? errno : EIO }
                offset += n
            }
            return nil
        }
    }
}
