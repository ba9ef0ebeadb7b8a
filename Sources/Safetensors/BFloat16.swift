import Foundation

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
