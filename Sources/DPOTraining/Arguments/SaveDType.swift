import Foundation
import Safetensors

/// `save_dtype`: the dtype of the final model's weights (checkpoints are always float32, so that a
/// resume continues bit for bit). TRL's names, with the short aliases people type.
public enum SaveDType: String, CaseIterable, Sendable {
    case float32, bfloat16

    static let aliases: [String: SaveDType] = ["fp32": .float32, "bf16": .bfloat16]

    /// A name or an alias, in any case.
    public init?(name: String) {
        let lower = name.lowercased()
        guard let value = SaveDType(rawValue: lower) ?? Self.aliases[lower] else { return nil }
        self = value
    }

    public var safetensors: SafetensorsDType { self == .bfloat16 ? .bf16 : .f32 }
}
