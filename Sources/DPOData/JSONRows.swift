import DPOSupport
import Foundation

/// Rows of a JSONL file or of a JSON array file, each with its 1-based line (or element) number.
public enum JSONRows {
    /// A row's parsed value, or why its line could not be parsed (the caller decides whether to skip it).
    public struct Row { public let line: Int; public let value: Result<Any, DPOError> }

    public static func read(_ path: String) throws -> [Row] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DPOError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        if data.isEmpty || data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw DPOError.file(path, "the file is empty")
        }
        if data.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "[") {
            guard String(data: data, encoding: .utf8) != nil else { throw DPOError.file(path, "not valid UTF-8") }
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw DPOError.file(path, "starts with '[' but is not a valid JSON array")
            }
            return array.enumerated().map { Row(line: $0.offset + 1, value: .success($0.element)) }
        }
        var rows: [Row] = []
        var lineNumber = 0
        for lineData in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            var bytes = lineData
            if bytes.last == 0x0D { bytes = bytes.dropLast() }
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            guard String(data: Data(bytes), encoding: .utf8) != nil else {
                rows.append(Row(line: lineNumber, value: .failure(DPOError("\(path):\(lineNumber): not valid UTF-8"))))
                continue
            }
            if let value = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) {
                rows.append(Row(line: lineNumber, value: .success(value)))
            } else {
                rows.append(Row(line: lineNumber, value: .failure(DPOError("\(path):\(lineNumber): malformed JSON"))))
            }
        }
        return rows
    }
}
