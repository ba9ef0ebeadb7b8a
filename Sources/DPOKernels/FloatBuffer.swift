import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One owned, 64-byte aligned allocation of floats. Parameters, gradients, optimizer moments and
/// activations each live in one of these; everything else is a view (an offset) into it.
public final class FloatBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Bytes mapped by `init(pagesOnFirstWrite:)`, 0 for an allocation.
    private let mappedBytes: Int

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: count) }
        mappedBytes = 0
    }

    /// Zeros whose memory the kernel gives page by page when first written (an anonymous mapping):
    /// the ranges never written cost no memory. For a model whose frozen weights live elsewhere
    /// (`FrozenWeights`), so that their ranges of its one flat buffer stay unbacked.
    public init(pagesOnFirstWrite count: Int) {
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              raw != MAP_FAILED else {
            // Out of address space is out of memory: the allocation would fail the same way.
            fatalError("cannot map \(bytes) bytes of memory (\(String(cString: strerror(errno))))")
        }
        self.count = count
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        mappedBytes = bytes
    }

    deinit {
        if mappedBytes > 0 { munmap(pointer, mappedBytes) } else { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count)
        pointer.update(from: other.pointer, count: count)
    }

    public func toArray() -> [Float] { Array(buffer) }
}
