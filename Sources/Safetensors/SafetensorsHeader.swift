import DPOSupport
import Foundation

/// The parsed, validated header of one file.
struct SafetensorsHeader {
    var tensors: [String: SafetensorsTensorInfo] = [:]
    var metadata: [String: String] = [:]

    static func parse(_ bytes: UnsafeRawBufferPointer, dataSize: Int, path: String) throws -> SafetensorsHeader {
        func fail(_ what: String) -> DPOError { DPOError.file(path, what) }

        guard String(bytes: bytes, encoding: .utf8) != nil else { throw fail("header is not valid UTF-8") }
        let json: OrderedJSON
        do { json = try OrderedJSON(parsing: Array(bytes)) } catch let error as DPOError {
            throw fail("header (\(bytes.count) bytes) is not valid JSON (\(error.message))")
        }
        guard case .object(let members) = json else {
            throw fail("header is not a JSON object")
        }

        var header = SafetensorsHeader()
        for member in members {
            let name = member.key
            if name == "__metadata__" {
                guard case .object(let fields) = member.value else { throw fail("__metadata__ is not a JSON object") }
                for field in fields {
                    guard case .string(let text) = field.value else {
                        throw fail("__metadata__ value for \"\(field.key)\" is not a string")
                    }
                    header.metadata[field.key] = text
                }
                continue
            }
            // JSON readers disagree on which of two equal keys wins; a file that relies on it is broken.
            guard header.tensors[name] == nil else { throw fail("tensor \"\(name)\" is named twice in the header") }
            header.tensors[name] = try tensorInfo(name: name, value: member.value, dataSize: dataSize, fail: fail)
        }
        // Two tensors may not share bytes: writing one would change the other.
        let byStart = header.tensors.values.filter { !$0.byteRange.isEmpty }.sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound {
            throw fail("tensors \"\(a.name)\" and \"\(b.name)\" overlap (data offsets \(a.byteRange) and \(b.byteRange))")
        }
        return header
    }

    private static func tensorInfo(name: String, value: OrderedJSON, dataSize: Int,
                                   fail: (String) -> DPOError) throws -> SafetensorsTensorInfo {
        let tensor = "tensor \"\(name)\""
        guard case .object = value else { throw fail("\(tensor) is not a JSON object") }
        let fields = value

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

extension OrderedJSON {
    var nonNegativeIntegers: [Int]? {
        guard case .array(let items) = self else { return nil }
        var result: [Int] = []
        for item in items {
            guard case .int(let value) = item, value >= 0 else { return nil }
            result.append(value)
        }
        return result
    }
}
