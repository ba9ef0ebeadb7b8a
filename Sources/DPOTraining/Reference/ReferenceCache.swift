import DPOData
import DPOModel
import DPOSupport
import Foundation
import Safetensors

/// The reference's summed log-probs for every train pair, computed once and cached on disk under a
/// key from the reference weights, the token ids (data file and tokenization settings), the
/// loss-relevant lengths and whether prompts were shared (which changes the rounding). A second run
/// with the same inputs reads the cache and holds no reference.
enum ReferenceCache {
    static func key(referenceDirectory: String, data: PreferenceDataset, sharePrompt: Bool) throws -> String {
        var h = FNV1a()
        let fm = FileManager.default
        // A PEFT adapter directory is its files and its base's.
        var directories = [referenceDirectory]
        if AdapterDirectory.isAdapter(referenceDirectory) {
            directories.append(try AdapterDirectory.readConfig(referenceDirectory).baseDirectory)
        }
        for directory in directories {
            let listed: [String]
            do { listed = try fm.contentsOfDirectory(atPath: directory) } catch {
                throw DPOError.file(directory, "cannot list the reference model's files: \(error.localizedDescription)")
            }
            let names = listed
                .filter { $0 == "config.json" || $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json"
                    || $0 == AdapterDirectory.configFile }.sorted()
            for name in names {
                h.add(bytes: name.utf8)
                try h.add(fileAt: directory + "/" + name)
            }
        }
        h.add(Int(bitPattern: UInt(data.fingerprint)))
        h.add(sharePrompt ? 1 : 0)
        return String(h.value, radix: 16)
    }

    /// The cached log-probs of `pairs` pairs at `path`, nil when there is no complete cache (a damaged
    /// one is said so and then computed again, which replaces it). Stored as pairs of floats split into
    /// high and low parts, for exact doubles.
    static func cachedLogps(path: String, pairs: Int, warn: Bool) -> [(Double, Double)]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let file = try SafetensorsFile(path: path)
            let high = try file.floats("logps"), low = try file.floats("logps_low")
            guard high.count == 2 * pairs, low.count == 2 * pairs else {
                throw DPOError.file(path, "holds \(high.count / 2) pairs' log-probs, the data \(pairs)")
            }
            func exact(_ j: Int) -> Double { Double(high[j]) + Double(low[j]) }
            return (0..<pairs).map { i -> (Double, Double) in (exact(2 * i), exact(2 * i + 1)) }
        } catch {
            if warn { Console.note("warning: the reference log-prob cache cannot be used (\(error)); computing it again\n") }
            return nil
        }
    }

    /// The reference's log-probs of every train pair: read from the cache, or computed with the
    /// pairs split over the ranks and gathered, then cached by rank 0.
    static func loadOrCompute(objective t: DPOObjective, outputDir: String) throws -> [(Double, Double)] {
        // The key hashes the reference's weight files (not the loaded weights), so a cache hit
        // needs no reference in memory.
        let key = try key(referenceDirectory: t.args.refModel ?? t.args.model, data: t.train, sharePrompt: t.args.sharePrompt)
        let path = outputDir + "/ref_logps-\(key).safetensors"
        // Every rank reads the cache, and they agree: all use it, or all compute it together.
        let cached = cachedLogps(path: path, pairs: t.train.count, warn: t.comm.isMain)
        var hits = [cached == nil ? 0.0 : 1.0]
        hits.withUnsafeMutableBufferPointer { t.comm.allReduceSum($0.baseAddress!, count: 1) }
        if let cached, hits[0] == Double(t.comm.worldSize) {
            if t.comm.isMain { Console.note("reference log-probs read from \(path)\n") }
            return cached
        }
        // Blocks of per_device_eval_batch_size pairs, dealt round-robin to the ranks: each block is
        // packed as one rank alone would pack it, so the numbers do not depend on the number of ranks.
        let reference = try DPOObjective.loadReference(args: t.args, policy: t.policy)
        let flat = UnsafeMutablePointer<Double>.allocate(capacity: max(2 * t.train.count, 1))
        defer { flat.deallocate() }
        flat.initialize(repeating: 0, count: 2 * t.train.count)
        var batch = TokenBatch()
        let b = t.args.perDeviceEvalBatchSize
        var start = t.comm.rank * b
        while start < t.train.count {
            let indices = Array(start..<min(start + b, t.train.count))
            batch.removeAll()
            for i in indices { PairScorer.append(t.train.pairs[i], to: &batch, sharePrompt: t.args.sharePrompt) }
            reference.forward(batch)
            let sums = PairScorer.sequenceSums(model: reference, batch: batch)
            for (k, i) in indices.enumerated() { (flat[2 * i], flat[2 * i + 1]) = (sums[2 * k], sums[2 * k + 1]) }
            start += b * t.comm.worldSize
        }
        t.comm.allReduceSum(flat, count: 2 * t.train.count)  // each value is on one rank, zeros elsewhere: exact
        let result = (0..<t.train.count).map { (flat[2 * $0], flat[2 * $0 + 1]) }
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
        t.comm.barrier()  // the cache is complete before any rank goes on
        return result
    }
}
