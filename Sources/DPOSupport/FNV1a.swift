

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
}
