import DPOSupport
import Foundation

/// A model's weights as one lookup over `model.safetensors` or the shards listed in `model.safetensors.index.json`
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public let directory: String
    /// Each tensor with the file that holds it.
    private let locations: [String: (file: SafetensorsFile, info: SafetensorsTensorInfo)]

    public var tensorNames: [String] { locations.keys.sorted() }

    public func info(_ name: String) -> SafetensorsTensorInfo? { locations[name]?.info }

    public init(directory: String) throws {
        self.directory = directory
        let singlePath = (directory as NSString).appendingPathComponent("model.safetensors")
        let indexPath = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        let files: [SafetensorsFile]
        // Like transformers: a single file wins over an index when both are present.
        if FileManager.default.fileExists(atPath: singlePath) {
            files = [try SafetensorsFile(path: singlePath)]
        } else if FileManager.default.fileExists(atPath: indexPath) {
            files = try Self.openShards(indexPath: indexPath, directory: directory)
        } else {
            throw DPOError.file(directory, "neither model.safetensors nor model.safetensors.index.json exists")
        }

        var locations: [String: (file: SafetensorsFile, info: SafetensorsTensorInfo)] = [:]
        for file in files {
            for (name, info) in file.tensors {
                if let earlier = locations[name] {
                    throw DPOError.file(directory, "tensor \"\(name)\" appears in both \((earlier.file.path as NSString).lastPathComponent) and \((file.path as NSString).lastPathComponent)")
                }
                locations[name] = (file, info)
            }
        }
        self.locations = locations
    }

    /// Opens the shards that `model.safetensors.index.json` names and checks that each tensor in
    /// its weight map is where the index says.
    private static func openShards(indexPath: String, directory: String) throws -> [SafetensorsFile] {
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw DPOError.file(indexPath, "cannot read")
        }
        let index: OrderedJSON
        do { index = try OrderedJSON(parsing: Array(data)) } catch let error as DPOError {
            throw DPOError.file(indexPath, "is not valid JSON (\(error.message))")
        }
        guard case .object = index else { throw DPOError.file(indexPath, "is not a JSON object") }
        guard case .object(let weightMap)? = index["weight_map"] else {
            throw DPOError.file(indexPath, "has no \"weight_map\" object")
        }
        var shardOfTensor: [String: String] = [:]
        for entry in weightMap {
            guard case .string(let shard) = entry.value else {
                throw DPOError.file(indexPath, "weight_map entry for \"\(entry.key)\" is not a file name")
            }
            guard shardOfTensor[entry.key] == nil else {
                throw DPOError.file(indexPath, "weight_map names tensor \"\(entry.key)\" twice")
            }
            shardOfTensor[entry.key] = shard
        }

        var files: [String: SafetensorsFile] = [:]
        for shard in Set(shardOfTensor.values).sorted() {
            let shardPath = (directory as NSString).appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw DPOError.file(indexPath, "names shard \(shard), which does not exist in \(directory)")
            }
            files[shard] = try SafetensorsFile(path: shardPath)
        }
        for (tensor, shard) in shardOfTensor.sorted(by: { $0.key < $1.key }) where files[shard]?.tensors[tensor] == nil {
            throw DPOError.file(indexPath, "places tensor \"\(tensor)\" in \(shard), but that shard does not contain it")
        }
        return files.keys.sorted().map { files[$0]! }
    }

    /// A BF16 tensor's bits in the mapping of the file that holds it (see
    /// `SafetensorsFile.mappedBFloat16`), with that file, which must stay alive while they are read.
    public func mappedBFloat16(_ name: String) -> (bits: UnsafePointer<UInt16>, file: SafetensorsFile)? {
        guard let location = locations[name], let bits = location.file.mappedBFloat16(name) else { return nil }
        return (bits, location.file)
    }

    public func readFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let location = locations[name] else {
            throw DPOError.file(directory, "checkpoint has no tensor named \"\(name)\"")
        }
        try location.file.readFloats(name, into: destination)
    }
}
