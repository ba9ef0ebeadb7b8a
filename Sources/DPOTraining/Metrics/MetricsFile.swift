import DPOSupport
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// OUTPUT_DIR/metrics.jsonl, appended one line per log. On resume it is cut back to the lines of
/// steps up to the checkpoint, so the file reads as one uninterrupted run. A line that cannot be
/// written (a full disk) is an error naming the file and the reason: the run stops with its last
/// checkpoint intact rather than going on with a log that lost lines.
final class MetricsFile {
    let path: String
    private let fd: Int32

    init(path: String, truncateAfterStep step: Int) throws {
        self.path = path
        var kept = ""
        if step > 0, FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw DPOError.file(path, "cannot read the metrics of the run being resumed: \(error.localizedDescription)")
            }
            for line in text.split(separator: "\n") {
                if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                   let s = object["step"] as? Int, s <= step {
                    kept += line + "\n"
                }
                // A line that is not a metrics object (cut short by a crash mid-write) is dropped.
            }
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DPOError.file(path, "cannot write the metrics file (\(String(cString: strerror(errno))))") }
        try write(kept)
    }

    deinit { close(fd) }

    func append(_ line: MetricsLine) throws { try write(line.json + "\n") }

    private func write(_ text: String) throws {
        if let errno = Console.writeAll(text, to: fd) {
            throw DPOError.file(path, "cannot write a metrics line (\(String(cString: strerror(errno))))")
        }
    }
}
