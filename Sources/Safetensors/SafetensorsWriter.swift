import DPOSupport
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif


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
        func writeFile(_ fd: Int32, path: String) throws {
            let length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: length) { try OutputFile.writeAll(fd, $0, path: path) }
            try header.withUnsafeBytes { try OutputFile.writeAll(fd, $0, path: path) }
            for entry in sorted {
                try writeData(fd, entry.data, dtype: dtype, path: path)
            }
        }
        let target: String
        switch try OutputFile.destination(path) {
        case .direct(let device):
            // A device, FIFO or socket is written as it is (never replaced by a file).
            let fd = open(device, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw DPOError.file(path, "cannot open for writing (\(String(cString: strerror(errno))))") }
            defer { close(fd) }
            try writeFile(fd, path: path)
            return
        case .replace(let resolved):
            target = resolved
        }
        let temporaryPath = "\(target).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DPOError.file(temporaryPath, "cannot create (\(String(cString: strerror(errno))))")
        }
        do {
            defer { close(fd) }
            try writeFile(fd, path: temporaryPath)
            guard fsync(fd) == 0 else {
                throw DPOError.file(temporaryPath, "fsync failed (\(String(cString: strerror(errno))))")
            }
        } catch {
            unlink(temporaryPath)
            throw error
        }
        guard rename(temporaryPath, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw DPOError.file(path, "cannot rename \(temporaryPath) into place (\(reason))")
        }
        // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
        let directory = (target as NSString).deletingLastPathComponent
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
                try chunk.withUnsafeBytes { try OutputFile.writeAll(fd, $0, path: path) }
            default:
                #if _endian(big)
                let chunk = values[start..<end].map { $0.bitPattern.littleEndian }
                try chunk.withUnsafeBytes { try OutputFile.writeAll(fd, $0, path: path) }
                #else
                try OutputFile.writeAll(fd, UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(values)[(4 * start)..<(4 * end)]), path: path)
                #endif
            }
            start = end
        }
    }
}
