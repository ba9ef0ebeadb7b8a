import DPOSupport
import Foundation

/// The parsed, validated header of one file.
struct SafetensorsHeader {
    var tensors: [String: SafetensorsTensorInfo] = [:]
    var metadata: [String: String] = [:]

    static func parse(_ bytes: UnsafeRawBufferPointer, dataSize: Int, path: String) throws -> SafetensorsHeader {
        func fail(_ what: String) -> DPOError { DPOError.file(path, what) }

        guard let json = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else {
            throw fail("header (\(bytes.count) bytes) is not valid JSON")
        }
        guard case .object(let entries) = json else {
            throw fail("header is not a JSON object")
        }

        var header = SafetensorsHeader()
        for (name, value) in entries {
            if name == "__metadata__" {
                guard case .object(let fields) = value else { throw fail("__metadata__ is not a JSON object") }
                for (key, field) in fields {
                    guard case .string(let text) = field else {
                        throw fail("__metadata__ value for \"\(key)\" is not a string")
                    }
                    header.metadata[key] = text
                }
                continue
            }
            header.tensors[name] = try tensorInfo(name: name, value: value, dataSize: dataSize, fail: fail)
        }
        return header
    }

    private static func tensorInfo(name: String, value: JSONValue, dataSize: Int,
                                   fail: (String) -> DPOError) throws -> SafetensorsTensorInfo {
        let tensor = "tensor \"\(name)\""
        guard case .object(let fields) = value else { throw fail("\(tensor) is not a JSON object") }

        guard case .string(let dtypeName)? = fields["dtype"] else { throw fail("\(tensor) has no string \"dtype\"") }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            let known = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("\(tensor) has unsupported dtype \(dtypeName) (supported: \(known))")
        }

        guard let shape = fields["shape"]?.nonNegativeIntegers else {
            throw fail("\(tensor) has no \"shape\" array of non-negative integers")
        }
        guard let offsets = fields["data_offsets"]?.nonNegativeIntegers, offsets.count == 2 else {
            throw fail("\(tensor) has no \"data_offsets\" pair of non-negative integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else { throw fail("\(tensor) data offsets [\(begin), \(end)) end before they begin") }
        guard end <= dataSize else {
            throw fail("\(tensor) data offsets [\(begin), \(end)) lie outside the data section (\(dataSize) bytes)")
        }

        // Multiply with overflow checks: a hostile shape must not wrap around to a small size.
        var byteCount: Int? = dtype.byteSize
        for dimension in shape {
            guard let soFar = byteCount else { break }
            let (product, overflow) = soFar.multipliedReportingOverflow(by: dimension)
            byteCount = overflow ? nil : product
        }
        guard let byteCount, byteCount == end - begin else {
            let size = byteCount.map { "\($0) bytes" } ?? "too many bytes"
            throw fail("\(tensor) has dtype \(dtype.rawValue) and shape \(shape) (\(size)) but its offsets span \(end - begin) bytes")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
    }
}

/// Just enough JSON to check a header field by field and say which one is wrong.
enum JSONValue: Decodable {
    case null, bool(Bool), integer(Int), number(Double), string(String)
    case array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        // Integers first: offsets and dimensions must be exact, not rounded through Double.
        else if let value = try? container.decode(Int.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    var nonNegativeIntegers: [Int]? {
        guard case .array(let items) = self else { return nil }
        var result: [Int] = []
        for item in items {
            guard case .integer(let value) = item, value >= 0 else { return nil }
            result.append(value)
        }
        return result
    }
}
