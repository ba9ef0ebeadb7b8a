import Foundation

/// out[i] = the fp32 value of the bf16 bits src[i]: exact (bf16 is fp32's top half, so widening is
/// a shift), split over the kernel threads. A frozen weight kept in bf16 is widened into a scratch
/// buffer before each product that reads it, which gives that product the bits of an fp32 copy.
public func widenBFloat16(_ src: UnsafePointer<UInt16>, into out: FloatPtr, count: Int) {
    forEachPiece(of: count) { range in
        out.withMemoryRebound(to: UInt32.self, capacity: count) { o in
            for i in range { o[i] = UInt32(src[i]) << 16 }
        }
    }
}
