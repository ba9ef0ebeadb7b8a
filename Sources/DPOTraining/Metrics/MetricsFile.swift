import DPOSupport
import Foundation

/// OUTPUT_DIR/metrics.jsonl, appended one line per log. On resume it is cut back to the lines of
/// steps up to the checkpoint, so the file reads as one uninterrupted run.
final class MetricsFile {
    let path: String
    private let handle: FileHandle

    init(path: String, truncateAfterStep step: Int) throws {
        self.path = path
        let fm = FileManager.default
        var kept = ""
        if step > 0, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let data = line.data(using: .utf8),
                   let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                   let s = object["step"] as? Int, s <= step {
                    kept += line + "\n"
                }
            }
        }
        guard fm.createFile(atPath: path, contents: Data(kept.utf8)), let handle = FileHandle(forWritingAtPath: path) else {
            throw DPOError.file(path, "cannot write the metrics file")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func append(_ line: MetricsLine) throws {
        handle.write(Data((line.json + "\n").utf8))
    }
}


