import DPOSupport
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The safetensors format (https://github.com/huggingface/safetensors):
//
//   [u64 little-endian N][N bytes of JSON header][data section]
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, with
// offsets relative to the start of the data section, plus an optional "__metadata__" object of
// string → string. All tensor data is little-endian and row-major.
//
// Files come from elsewhere (the Hub, other tools, half-finished copies), so everything in the
// header is checked before a single data byte is touched: after `SafetensorsFile.init` succeeds,
// every tensor's byte range lies inside the mapping and matches its shape and dtype.

// MARK: - Data types

public enum SafetensorsDType: String, CaseIterable, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .u8, .bool: return 1
        }
    }
}

public struct SafetensorsTensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

// MARK: - Reading one file

/// One memory-mapped safetensors file with a validated header.
///
/// The mapping is read-only and never changes after `init`, so one instance can be read from
/// several threads at once. (A file truncated by another process while mapped can still fault;
/// our writer avoids that by renaming a complete file into place.)
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: SafetensorsTensorInfo]
    public let metadata: [String: String]

    private let mapping: UnsafeRawPointer
    private let mappedSize: Int
    /// Where the data section starts inside the mapping: 8 + header length.
    private let dataStart: Int

    public var tensorNames: [String] { tensors.keys.sorted() }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw DPOError.file(path, "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }  // the mapping stays valid after the descriptor is closed

        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw DPOError.file(path, "cannot stat (\(String(cString: strerror(errno))))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw DPOError.file(path, "not a regular file")
        }
        let fileSize = Int(status.st_size)
        guard fileSize >= 8 else {
            throw DPOError.file(path, "truncated file (\(fileSize) bytes, needs at least 8 for the header length)")
        }

        guard let raw = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), raw != MAP_FAILED else {
            throw DPOError.file(path, "cannot mmap \(fileSize) bytes (\(String(cString: strerror(errno))))")
        }
        let base = UnsafeRawPointer(raw)
        // From here on, a failed check must unmap before throwing.
        do {
            let headerLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
            guard headerLength <= UInt64(fileSize - 8) else {
                throw DPOError.file(path, "header length \(headerLength) exceeds file size \(fileSize)")
            }
            let dataStart = 8 + Int(headerLength)
            let headerBytes = UnsafeRawBufferPointer(start: base + 8, count: Int(headerLength))
            let header = try SafetensorsHeader.parse(headerBytes, dataSize: fileSize - dataStart, path: path)
            self.tensors = header.tensors
            self.metadata = header.metadata
            self.dataStart = dataStart
        } catch {
            munmap(raw, fileSize)
            throw error
        }
        self.mapping = base
        self.mappedSize = fileSize
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: mapping), mappedSize)
    }

    /// The tensor's bytes inside the mapping; valid while `self` is alive.
    private func bytes(of info: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(start: mapping, count: mappedSize)[
            (dataStart + info.byteRange.lowerBound)..<(dataStart + info.byteRange.upperBound)])
    }

    private func info(_ name: String) throws -> SafetensorsTensorInfo {
        guard let info = tensors[name] else {
            throw DPOError.file(path, "no tensor named \"\(name)\"")
        }
        return info
    }

    /// Converts F32/F16/BF16/F64 to fp32 into `destination` (count must equal elementCount, else throws naming the tensor).
    /// Conversions are exact except F64, which rounds to nearest even like numpy's astype(float32).
    public func readFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try info(name)
        guard destination.count == info.elementCount else {
            throw DPOError.file(path, "tensor \"\(name)\" has shape \(info.shape) (\(info.elementCount) elements) but the destination holds \(destination.count)")
        }
        let source = bytes(of: info)
        // Tensors need not be aligned inside the file, so every load is unaligned.
        switch info.dtype {
        case .f32:
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: source)
            #if _endian(big)
            for i in destination.indices { destination[i] = Float(bitPattern: UInt32(littleEndian: destination[i].bitPattern)) }
            #endif
        case .f16:
            for i in destination.indices {
                destination[i] = floatFromHalfBits(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in destination.indices {
                destination[i] = floatFromBFloat16Bits(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .f64:
            for i in destination.indices {
                destination[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
            }
        case .i64, .i32, .u8, .bool:
            throw DPOError.file(path, "tensor \"\(name)\" has dtype \(info.dtype.rawValue); expected a floating-point dtype (F32, F16, BF16 or F64)")
        }
    }

    /// All of a tensor's values as fp32; a convenience for tests and small tensors.
    public func floats(_ name: String) throws -> [Float] {
        let count = try info(name).elementCount
        var values = [Float](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try readFloats(name, into: $0) }
        return values
    }

    /// An integer tensor's values (I64, or I32 widened), e.g. token ids.
    public func int64s(_ name: String) throws -> [Int64] {
        let info = try info(name)
        let source = bytes(of: info)
        switch info.dtype {
        case .i64:
            return (0..<info.elementCount).map {
                Int64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))
            }
        case .i32:
            return (0..<info.elementCount).map {
                Int64(Int32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)))
            }
        default:
            throw DPOError.file(path, "tensor \"\(name)\" has dtype \(info.dtype.rawValue); expected I64 or I32")
        }
    }
}

// MARK: - Header parsing and validation

/// The parsed, validated header of one file.
private struct SafetensorsHeader {
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
private enum JSONValue: Decodable {
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

// MARK: - Number conversions

/// IEEE binary16 bits → fp32, exactly (every half value is representable in fp32).
/// Done with bit manipulation because `Float16` is unavailable on some platforms (macOS on x86_64).
func floatFromHalfBits(_ bits: UInt16) -> Float {
    let sign: UInt32 = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x03FF)
    switch exponent {
    case 0:
        // Zero or subnormal: mantissa × 2^-24, which is a normal fp32 number (or ±0), computed exactly.
        let magnitude = Float(mantissa) * 0x1p-24
        return Float(bitPattern: sign | magnitude.bitPattern)
    case 0x1F:
        // Infinity or NaN; the NaN payload moves to the top of the fp32 mantissa.
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    default:
        // Normal: rebias the exponent from 15 to 127.
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
}

/// bfloat16 is the top half of an fp32, so widening is a shift.
func floatFromBFloat16Bits(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// fp32 → bfloat16 with round-to-nearest-even, as PyTorch does. NaN stays NaN (sign kept, quiet
/// bit set, because truncating a NaN whose payload is only in the low bits would give infinity).
func bfloat16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
    // Adding 0x7FFF plus the lowest kept bit rounds halfway cases towards the even neighbour;
    // values above the largest bf16 round to infinity, as they should.
    let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
}

// MARK: - Writing

public enum SafetensorsWriter {
    public struct Entry {
        public let name: String
        public let shape: [Int]
        /// Row-major values; must hold exactly product(shape) floats and stay valid until `write` returns.
        public let data: UnsafeBufferPointer<Float>

        public init(name: String, shape: [Int], data: UnsafeBufferPointer<Float>) {
            self.name = name
            self.shape = shape
            self.data = data
        }
    }

    /// Writes the entries (sorted by name, 8-byte aligned header padded with spaces like the Python library) as `dtype` (.f32 or .bf16; bf16 uses round-to-nearest-even, NaN preserved)
    /// to a temporary file beside `path`, fsyncs it, then renames it to `path` so a reader never sees half a file.
    public static func write(path: String, entries: [Entry], dtype: SafetensorsDType,
                             metadata: [String: String] = [:]) throws {
        guard dtype == .f32 || dtype == .bf16 else {
            throw DPOError.file(path, "cannot write dtype \(dtype.rawValue); the writer supports F32 and BF16")
        }
        let sorted = entries.sorted { $0.name < $1.name }
        for (index, entry) in sorted.enumerated() {
            guard entry.name != "__metadata__" else {
                throw DPOError.file(path, "\"__metadata__\" is reserved and cannot name a tensor")
            }
            if index > 0, sorted[index - 1].name == entry.name {
                throw DPOError.file(path, "tensor \"\(entry.name)\" is given twice")
            }
            guard entry.shape.allSatisfy({ $0 >= 0 }), entry.shape.reduce(1, *) == entry.data.count else {
                throw DPOError.file(path, "tensor \"\(entry.name)\" has shape \(entry.shape) but \(entry.data.count) values")
            }
        }

        let header = headerBytes(sorted, dtype: dtype, metadata: metadata)
        let temporaryPath = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DPOError.file(temporaryPath, "cannot create (\(String(cString: strerror(errno))))")
        }
        do {
            defer { close(fd) }
            let length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: length) { try writeAll(fd, $0, path: temporaryPath) }
            try header.withUnsafeBytes { try writeAll(fd, $0, path: temporaryPath) }
            for entry in sorted {
                try writeData(fd, entry.data, dtype: dtype, path: temporaryPath)
            }
            guard fsync(fd) == 0 else {
                throw DPOError.file(temporaryPath, "fsync failed (\(String(cString: strerror(errno))))")
            }
        } catch {
            unlink(temporaryPath)
            throw error
        }
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw DPOError.file(path, "cannot rename \(temporaryPath) into place (\(reason))")
        }
        // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
        let directory = (path as NSString).deletingLastPathComponent
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// The JSON header, padded with spaces so the data section starts at a multiple of 8 bytes.
    private static func headerBytes(_ entries: [Entry], dtype: SafetensorsDType, metadata: [String: String]) -> [UInt8] {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(quotedJSONString($0)):\(quotedJSONString(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for entry in entries {
            let end = offset + entry.data.count * dtype.byteSize
            let shape = entry.shape.map(String.init).joined(separator: ",")
            fields.append("\(quotedJSONString(entry.name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var bytes = Array("{\(fields.joined(separator: ","))}".utf8)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8))
        return bytes
    }

    /// Converts and writes in chunks, so a multi-gigabyte model needs no second full-size buffer.
    private static func writeData(_ fd: Int32, _ values: UnsafeBufferPointer<Float>, dtype: SafetensorsDType, path: String) throws {
        let chunkElements = 1 << 18
        var start = 0
        while start < values.count {
            let end = min(start + chunkElements, values.count)
            switch dtype {
            case .bf16:
                let chunk = values[start..<end].map { bfloat16Bits($0).littleEndian }
                try chunk.withUnsafeBytes { try writeAll(fd, $0, path: path) }
            default:
                #if _endian(big)
                let chunk = values[start..<end].map { $0.bitPattern.littleEndian }
                try chunk.withUnsafeBytes { try writeAll(fd, $0, path: path) }
                #else
                try writeAll(fd, UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(values)[(4 * start)..<(4 * end)]), path: path)
                #endif
            }
            start = end
        }
    }

    /// write(2) may write less than asked or be interrupted; loop until every byte is out.
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var written = 0
        while written < bytes.count {
            let result = posixWrite(fd, bytes.baseAddress! + written, bytes.count - written)
            if result < 0 {
                if errno == EINTR { continue }
                throw DPOError.file(path, "write failed (\(String(cString: strerror(errno))))")
            }
            written += result
        }
    }
}

/// The C library's write(2); inside `SafetensorsWriter` the name `write` means the method.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}

// MARK: - A checkpoint directory

/// A model's weights as one lookup over `model.safetensors` or the shards listed in `model.safetensors.index.json`
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public let directory: String
    /// Each tensor with the file that holds it.
    private let locations: [String: (file: SafetensorsFile, info: SafetensorsTensorInfo)]

    public var tensorNames: [String] { locations.keys.sorted() }

    public func info(_ name: String) -> SafetensorsTensorInfo? { locations[name]?.info }

    public init(directory: String) throws {
        self.directory = directory
        let singlePath = (directory as NSString).appendingPathComponent("model.safetensors")
        let indexPath = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        let files: [SafetensorsFile]
        // Like transformers: a single file wins over an index when both are present.
        if FileManager.default.fileExists(atPath: singlePath) {
            files = [try SafetensorsFile(path: singlePath)]
        } else if FileManager.default.fileExists(atPath: indexPath) {
            files = try Self.openShards(indexPath: indexPath, directory: directory)
        } else {
            throw DPOError.file(directory, "neither model.safetensors nor model.safetensors.index.json exists")
        }

        var locations: [String: (file: SafetensorsFile, info: SafetensorsTensorInfo)] = [:]
        for file in files {
            for (name, info) in file.tensors {
                if let earlier = locations[name] {
                    throw DPOError.file(directory, "tensor \"\(name)\" appears in both \((earlier.file.path as NSString).lastPathComponent) and \((file.path as NSString).lastPathComponent)")
                }
                locations[name] = (file, info)
            }
        }
        self.locations = locations
    }

    /// Opens the shards that `model.safetensors.index.json` names and checks that each tensor in
    /// its weight map is where the index says.
    private static func openShards(indexPath: String, directory: String) throws -> [SafetensorsFile] {
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw DPOError.file(indexPath, "cannot read")
        }
        guard let index = try? JSONDecoder().decode(JSONValue.self, from: data),
              case .object(let top) = index else {
            throw DPOError.file(indexPath, "is not a JSON object")
        }
        guard case .object(let weightMap)? = top["weight_map"] else {
            throw DPOError.file(indexPath, "has no \"weight_map\" object")
        }
        var shardOfTensor: [String: String] = [:]
        for (tensor, value) in weightMap {
            guard case .string(let shard) = value else {
                throw DPOError.file(indexPath, "weight_map entry for \"\(tensor)\" is not a file name")
            }
            shardOfTensor[tensor] = shard
        }

        var files: [String: SafetensorsFile] = [:]
        for shard in Set(shardOfTensor.values).sorted() {
            let shardPath = (directory as NSString).appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw DPOError.file(indexPath, "names shard \(shard), which does not exist in \(directory)")
            }
            files[shard] = try SafetensorsFile(path: shardPath)
        }
        for (tensor, shard) in shardOfTensor.sorted(by: { $0.key < $1.key }) where files[shard]?.tensors[tensor] == nil {
            throw DPOError.file(indexPath, "places tensor \"\(tensor)\" in \(shard), but that shard does not contain it")
        }
        return files.keys.sorted().map { files[$0]! }
    }

    public func readFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let location = locations[name] else {
            throw DPOError.file(directory, "checkpoint has no tensor named \"\(name)\"")
        }
        try location.file.readFloats(name, into: destination)
    }
}
