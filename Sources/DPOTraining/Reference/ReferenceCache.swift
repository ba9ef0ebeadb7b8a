import DPOData
import DPOModel
import DPOSupport
import Foundation
import Safetensors

/// The reference's summed log-probs for every train pair, computed once and cached on disk under a
/// key from the reference weights, the token ids (data file and tokenization settings) and the
/// loss-relevant lengths. A second run with the same inputs reads the cache and holds no reference.
enum ReferenceCache {
    static func key(referenceDirectory: String, data: PreferenceDataset) throws -> String {
        var h = FNV1a()
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: referenceDirectory)) ?? [])
            .filter { $0 == "config.json" || $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json" }.sorted()
        for name in names {
            guard let data = fm.contents(atPath: referenceDirectory + "/" + name) else {
                throw DPOError.file(referenceDirectory + "/" + name, "cannot read")
            }
            h.add(bytes: name.utf8)
            h.add(bytes: data)
        }
        h.add(Int(bitPattern: UInt(data.fingerprint)))
        return String(h.value, radix: 16)
    }

    static func loadOrCompute(objective t: DPOObjective, outputDir: String) throws -> [(Double, Double)] {
        // The key hashes the reference's weight files (not the loaded weights), so a cache hit
        // needs no reference in memory.
        let key = try key(referenceDirectory: t.args.refModel ?? t.args.model, data: t.train)
        let path = outputDir + "/ref_logps-\(key).safetensors"
        if let file = try? SafetensorsFile(path: path), let values = try? file.floats("logps"), values.count == 2 * t.train.count {
            // Stored as pairs of floats split into high and low parts for exact doubles.
            let low = try file.floats("logps_low")
            var cached: [(Double, Double)] = []
            for i in 0..<t.train.count {
                let c = Double(values[2 * i]) + Double(low[2 * i])
                let r = Double(values[2 * i + 1]) + Double(low[2 * i + 1])
                cached.append((c, r))
            }
            if t.comm.isMain { Console.note("reference log-probs read from \(path)\n") }
            return cached
        }
        let reference = try DPOObjective.loadReference(args: t.args, policy: t.policy)
        var result = [(Double, Double)](repeating: (0, 0), count: t.train.count)
        var batch = TokenBatch()
        let b = t.args.perDeviceEvalBatchSize
        var start = 0
        while start < t.train.count {
            let indices = Array(start..<min(start + b, t.train.count))
            batch.removeAll()
            for i in indices { PairScorer.append(t.train.pairs[i], to: &batch) }
            reference.forward(batch)
            let sums = PairScorer.sequenceSums(model: reference, batch: batch)
            for (k, i) in indices.enumerated() { result[i] = (sums[2 * k], sums[2 * k + 1]) }
            start += b
        }
        if t.comm.isMain {
            var high = [Float](), low = [Float]()
            for (c, r) in result {
                for x in [c, r] {
                    let h = Float(x)
                    high.append(h)
                    low.append(Float(x - Double(h)))
                }
            }
            try high.withUnsafeBufferPointer { hb in
                try low.withUnsafeBufferPointer { lb in
                    try SafetensorsWriter.write(path: path, entries: [
                        SafetensorsWriter.Entry(name: "logps", shape: [high.count], data: hb),
                        SafetensorsWriter.Entry(name: "logps_low", shape: [low.count], data: lb),
                    ], dtype: .f32, metadata: ["key": key, "pairs": "\(t.train.count)"])
                }
            }
        }
        return result
    }
}
