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
        dropPages(of: source)
    }

    /// Gives the pages wholly inside `bytes` back: the file's pages read into this private, read-only
    /// mapping count in the process's resident memory until it is unmapped, so without this, loading
    /// a model holds its files and its fp32 copy at once (`score` on a 3B model in bf16 shards peaked
    /// at 18.5 GB, 12.9 GB with this). The data stays in the page cache; a later read faults the same
    /// bytes back in.
    private func dropPages(of bytes: UnsafeRawBufferPointer) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let start = bytes.baseAddress, page > 0 else { return }
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + bytes.count) / page * page
        guard end > first, let pointer = UnsafeMutableRawPointer(bitPattern: first) else { return }
        // Advice only: where the kernel declines, the pages stay until the file is unmapped.
        _ = madvise(pointer, end - first, MADV_DONTNEED)
    }

    /// A BF16 tensor's bits in place, inside the file's mapping (valid while `self` is alive): the
    /// pages are the page cache's, shared by every process that maps the file, and faulted in when
    /// first read. nil when the tensor is not BF16 or not 2-byte aligned in the mapping (the format
    /// does not require it), or on a big-endian host.
    public func mappedBFloat16(_ name: String) -> UnsafePointer<UInt16>? {
        #if _endian(big)
        return nil
        #else
        guard let info = tensors[name], info.dtype == .bf16, let start = bytes(of: info).baseAddress,
              Int(bitPattern: start) % MemoryLayout<UInt16>.alignment == 0 else { return nil }
        return start.assumingMemoryBound(to: UInt16.self)
        #endif
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
