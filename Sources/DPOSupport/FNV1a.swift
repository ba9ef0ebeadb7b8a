import Foundation

/// 64-bit FNV-1a over integers and bytes.
public struct FNV1a: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add(_ x: Int) {
        var v = UInt64(bitPattern: Int64(x))
        for _ in 0..<8 {
            value = (value ^ (v & 0xFF)) &* 0x100_0000_01b3
            v >>= 8
        }
    }
    public mutating func add<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
    /// Floats hashed four bytes at a time (fast enough for whole models).
    public mutating func add(words p: UnsafePointer<Float>, count: Int) {
        p.withMemoryRebound(to: UInt32.self, capacity: count) { w in
            for i in 0..<count { value = (value ^ UInt64(w[i])) &* 0x100_0000_01b3 }
        }
    }
    public mutating func add(floats p: UnsafePointer<Float>, count: Int) {
        UnsafeRawBufferPointer(start: p, count: count * 4).forEach { value = (value ^ UInt64($0)) &* 0x100_0000_01b3 }
    }

    /// A file's bytes, read in 8 MB pieces (a model's weights are never all in memory) and hashed
    /// eight at a time, each word mixed by FNV-1a's multiply and a fold of the high half into the
    /// low (so that every bit of a word reaches every bit of the value). The length is hashed too.
    public mutating func add(fileAt path: String) throws {
        func failure() -> DPOError { DPOError.file(path, "cannot read: \(String(cString: strerror(errno)))") }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw failure() }
        defer { close(fd) }
        let pieceBytes = 8 << 20
        let piece = UnsafeMutableRawPointer.allocate(byteCount: pieceBytes, alignment: 64)
        defer { piece.deallocate() }
        var total = 0, h = value, atEnd = false
        while !atEnd {
            // Fill the piece whole (read may return less than asked), so that the words hashed do not
            // depend on how the reads were cut.
            var got = 0
            while got < pieceBytes {
                let n = read(fd, piece + got, pieceBytes - got)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure()
                }
                if n == 0 { atEnd = true; break }
                got += n
            }
            let words = got / 8
            let w = piece.assumingMemoryBound(to: UInt64.self)
            for i in 0..<words {
                h = (h ^ w[i]) &* 0x100_0000_01b3
                h ^= h >> 32
            }
            for i in (words * 8)..<got { h = (h ^ UInt64(piece.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01b3 }
            total += got
        }
        value = h
        add(total)
    }
}
