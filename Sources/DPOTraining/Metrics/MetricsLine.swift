import DPOSupport

/// One JSON object per line in metrics.jsonl, keys in a fixed order.
public struct MetricsLine {
    public var fields: [(String, Any)] = []
    public init() {}
    public mutating func add(_ key: String, _ value: Any) { fields.append((key, value)) }

    public var json: String {
        let parts = fields.map { key, value -> String in
            let v: String
            switch value {
            case let d as Double: v = d.isFinite ? "\(d)" : "null"
            case let i as Int: v = "\(i)"
            case let s as String: v = quotedJSONString(s)
            default: v = "\(value)"
            }
            return "\"\(key)\": \(v)"
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
