import Foundation

/// A double as the hex string of its bits, for state that must come back exactly.
func exactJSON(_ x: Double) -> String { String(x.bitPattern, radix: 16) }

func doubleFromExactJSON(_ value: Any?) -> Double {
    if let s = value as? String, let bits = UInt64(s, radix: 16) { return Double(bitPattern: bits) }
    return (value as? NSNumber)?.doubleValue ?? 0
}
