import Foundation

extension Architecture {
    /// Which layers attend through a sliding window, as transformers decides it: `layer_types`
    /// ("full_attention" or "sliding_attention" per layer) when config.json has it, else
    /// `defaultSliding` for each layer; every sliding layer uses `window`. A sliding layer without a
    /// window is refused, as transformers cannot build its mask either.
    static func layerWindows(_ json: ConfigJSON, layers: Int, window: Int?,
                             defaultSliding: (Int) -> Bool) throws -> [Int?] {
        guard json.has("layer_types") else {
            return (0..<layers).map { window != nil && defaultSliding($0) ? window : nil }
        }
        guard let types = json.values["layer_types"] as? [Any], types.count == layers else {
            throw json.fail("\"layer_types\" must list one of \"full_attention\", \"sliding_attention\" for each of the \(layers) layers")
        }
        return try types.map { type in
            switch type as? String {
            case "full_attention": return nil
            case "sliding_attention":
                guard let window else {
                    throw json.fail("\"layer_types\" has sliding_attention layers but no sliding window is set (\"sliding_window\")")
                }
                return window
            default:
                throw json.fail("unsupported entry \(type) in \"layer_types\" (supported: full_attention, sliding_attention)")
            }
        }
    }

    /// `sliding_window` as a window: absent gives `absent`, null gives none.
    static func slidingWindow(_ json: ConfigJSON, absent: Int?) throws -> Int? {
        guard json.values["sliding_window"] != nil else { return absent }
        guard json.has("sliding_window") else { return nil }
        let window = try json.int("sliding_window")
        guard window >= 1 else { throw json.fail("\"sliding_window\" must be at least 1, got \(window)") }
        return window
    }

    /// Writes the window of the sliding layers back as `sliding_window` (null: none slides).
    static func writeSlidingWindow(_ spec: DecoderSpec, _ json: inout [String: Any]) {
        json["sliding_window"] = spec.layerWindows.compactMap { $0 }.first ?? NSNull()
    }

    /// Writes the layer windows back as `layer_types` and `sliding_window`.
    static func writeLayerWindows(_ spec: DecoderSpec, _ json: inout [String: Any]) {
        writeSlidingWindow(spec, &json)
        json["layer_types"] = spec.layerWindows.map { $0 == nil ? "full_attention" : "sliding_attention" }
    }
}
