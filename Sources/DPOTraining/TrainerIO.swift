import DPOData
import DPOKernels
import DPOModel
import DPOSupport
import Foundation
import Safetensors

/// OUTPUT_DIR/metrics.jsonl, appended one line per log. On resume it is cut back to the lines of
/// steps up to the checkpoint, so the file reads as one uninterrupted run.
final class MetricsFile {
    let path: String
    private let handle: FileHandle

    init(path: String, truncateAfterStep step: Int) throws {
        self.path = path
        let fm = FileManager.default
        var kept = ""
        if step > 0, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let data = line.data(using: .utf8),
                   let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                   let s = object["step"] as? Int, s <= step {
                    kept += line + "\n"
                }
            }
        }
        guard fm.createFile(atPath: path, contents: Data(kept.utf8)), let handle = FileHandle(forWritingAtPath: path) else {
            throw DPOError.file(path, "cannot write the metrics file")
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func append(_ line: MetricsLine) throws {
        handle.write(Data((line.json + "\n").utf8))
    }
}

/// One readable line per log on the console; on a terminal, a progress bar with the ETA.
final class ProgressLine {
    let total: Int
    let enabled: Bool
    let tty = isatty(STDERR_FILENO) != 0
    let started = Date()
    var firstStep: Int?

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    func update(step: Int, line: MetricsLine) {
        guard enabled else { return }
        if firstStep == nil { firstStep = step - 1 }
        let values = Dictionary(line.fields.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        func num(_ k: String) -> Double { values[k] as? Double ?? 0 }
        let done = step - (firstStep ?? 0)
        let elapsed = Date().timeIntervalSince(started)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - step) : 0
        var text = String(format: "step %d/%d  loss %.4f", step, total, num("loss"))
        if values["rewards/accuracies"] != nil {
            text += String(format: "  acc %.3f  margin %.4f", num("rewards/accuracies"), num("rewards/margins"))
        }
        text += String(format: "  lr %.2e  grad %.3f  %.0f tok/s  eta %@", num("learning_rate"), num("grad_norm"),
                       num("tokens_per_second"), formatDuration(eta))
        if tty {
            let width = 24, filled = Int(Double(width) * Double(step) / Double(max(total, 1)))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\u{1B}[K[\(bar)] " + text)
        } else {
            write(text + "\n")
        }
    }

    func note(_ line: MetricsLine) {
        guard enabled else { return }
        let parts = line.fields.compactMap { k, v -> String? in
            guard k.hasPrefix("eval_"), let d = v as? Double else { return nil }
            return String(format: "%@ %.4f", String(k.dropFirst(5)), d)
        }
        write((tty ? "\r\u{1B}[K" : "") + "eval @ step \(line.fields.first?.1 ?? 0): " + parts.joined(separator: "  ") + "\n")
    }

    func finish() { if enabled && tty { write("\n") } }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
    if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s)s"
}

// MARK: - Checkpoints

extension Trainer {
    static let checkpointPrefix = "checkpoint-"

    /// OUTPUT_DIR/checkpoint-STEP: a model directory transformers loads (fp32, whatever save_dtype
    /// is, so a resume continues bit for bit), the optimizer moments, and trainer_state.json with the
    /// step, the data position and the open logging window. Written under a temporary name and
    /// renamed when complete: a reader never sees half a checkpoint.
    public func saveCheckpoint() throws {
        // The whole optimizer state, whatever the sharding, so a run can resume on another number of ranks.
        let (fullM, fullV) = gatheredMoments()
        if comm.isMain {
            let fm = FileManager.default
            let final = args.outputDir + "/\(Self.checkpointPrefix)\(globalStep)"
            let temporary = args.outputDir + "/.tmp-\(Self.checkpointPrefix)\(globalStep)-\(getpid())"
            try? fm.removeItem(atPath: temporary)
            try ModelDirectory.save(policy, to: temporary, configJSON: policyConfigJSON, companionsFrom: modelDirectory, dtype: .f32)
            let entries = [
                SafetensorsWriter.Entry(name: "exp_avg", shape: [fullM.count], data: UnsafeBufferPointer(fullM.buffer)),
                SafetensorsWriter.Entry(name: "exp_avg_sq", shape: [fullV.count], data: UnsafeBufferPointer(fullV.buffer)),
            ]
            try SafetensorsWriter.write(path: temporary + "/optimizer.safetensors", entries: entries, dtype: .f32,
                                        metadata: ["adam_step": "\(optimizer.step)"])
            let state: [String: Any] = [
                "global_step": globalStep,
                "max_steps": totalSteps,
                "epoch": Double(globalStep) / Double(stepsPerEpoch),
                "num_tokens": exactJSON(tokensSeen),
                "adam_step": optimizer.step,
                "world_size": comm.worldSize,
                "data_position": ["epoch": globalStep / stepsPerEpoch, "step_in_epoch": globalStep % stepsPerEpoch,
                                  "seed": args.seed, "shuffle": args.shuffle],
                "train_fingerprint": String(objective.fingerprint, radix: 16),
                "log_window": window.state,
            ]
            try ModelDirectory.writeJSON(state, to: temporary + "/trainer_state.json")
            try? fm.removeItem(atPath: final)
            do { try fm.moveItem(atPath: temporary, toPath: final) } catch {
                throw DPOError.file(final, "cannot move the finished checkpoint into place: \(error.localizedDescription)")
            }
            if let limit = args.saveTotalLimit {
                for old in checkpoints(in: args.outputDir).dropLast(limit) {
                    try? fm.removeItem(atPath: args.outputDir + "/\(Self.checkpointPrefix)\(old)")
                }
            }
        }
        comm.barrier()  // no rank goes on (or reads the checkpoint) before it is complete
    }

    /// The optimizer moments over the whole parameter buffer (gathered from the shards under ZeRO-1).
    func gatheredMoments() -> (FloatBuffer, FloatBuffer) {
        guard optimizer.shard.count != policy.parameterCount else { return (optimizer.m, optimizer.v) }
        let n = policy.parameterCount, lower = optimizer.shard.lowerBound
        let m = FloatBuffer(count: n), v = FloatBuffer(count: n)
        (m.pointer + lower).update(from: optimizer.m.pointer, count: optimizer.shard.count)
        (v.pointer + lower).update(from: optimizer.v.pointer, count: optimizer.shard.count)
        comm.allGather(m.pointer, counts: shardCounts)
        comm.allGather(v.pointer, counts: shardCounts)
        return (m, v)
    }

    /// Complete checkpoints' steps, oldest first.
    func checkpoints(in directory: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix(Self.checkpointPrefix) else { return nil }
            return Int(name.dropFirst(Self.checkpointPrefix.count))
        }.sorted()
    }

    /// Continues from a checkpoint directory, or "auto": the latest in output_dir (none: a fresh start).
    func resumeFrom(_ spec: String) throws {
        let path: String
        if spec == "auto" {
            guard let last = checkpoints(in: args.outputDir).last else {
                if comm.isMain { FileHandle.standardError.write(Data("no checkpoint in \(args.outputDir): starting from step 0\n".utf8)) }
                return
            }
            path = args.outputDir + "/\(Self.checkpointPrefix)\(last)"
        } else {
            path = spec
        }
        let statePath = path + "/trainer_state.json"
        guard let data = FileManager.default.contents(atPath: statePath),
              let state = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let step = state["global_step"] as? Int, let adamStep = state["adam_step"] as? Int else {
            throw DPOError.file(statePath, "missing or unreadable: not a complete dpo-dist checkpoint")
        }
        if let fingerprint = state["train_fingerprint"] as? String, fingerprint != String(objective.fingerprint, radix: 16) {
            throw DPOError.file(path, "was made with different training data or tokenization (train_file, max_length, max_prompt_length)")
        }
        let loaded = try ModelDirectory.load(path).model
        guard loaded.parameterCount == policy.parameterCount else {
            throw DPOError.file(path, "holds a model of another shape than \(args.model)")
        }
        policy.params.copy(from: loaded.params)
        let moments = try SafetensorsFile(path: path + "/optimizer.safetensors")
        let fullM = FloatBuffer(count: policy.parameterCount, zeroed: false), fullV = FloatBuffer(count: policy.parameterCount, zeroed: false)
        try moments.readFloats("exp_avg", into: fullM.buffer)
        try moments.readFloats("exp_avg_sq", into: fullV.buffer)
        optimizer.m.pointer.update(from: fullM.pointer + optimizer.shard.lowerBound, count: optimizer.shard.count)
        optimizer.v.pointer.update(from: fullV.pointer + optimizer.shard.lowerBound, count: optimizer.shard.count)
        optimizer.step = adamStep
        globalStep = step
        tokensSeen = doubleFromExactJSON(state["num_tokens"])
        window = LogWindow(state: state["log_window"] as? [String: Any] ?? [:])
        if comm.isMain { FileHandle.standardError.write(Data("resumed from \(path) at step \(step)\n".utf8)) }
    }
}

extension LogWindow {
    /// The open window. Doubles are stored as their bit patterns: JSON text through Foundation does
    /// not give back every double exactly, and a resumed run must log the same bits.
    var state: [String: Any] {
        ["steps": steps, "loss_sum": exactJSON(lossSum), "last_grad_norm": exactJSON(lastGradNorm),
         "last_learning_rate": exactJSON(lastLearningRate), "seconds": exactJSON(seconds), "examples": exactJSON(examples), "names": names,
         "tokens": exactJSON(tokens), "mean_sums": meanSums.map(exactJSON)]
    }

    init(state: [String: Any]) {
        self.init()
        steps = state["steps"] as? Int ?? 0
        lossSum = doubleFromExactJSON(state["loss_sum"])
        lastGradNorm = doubleFromExactJSON(state["last_grad_norm"])
        lastLearningRate = doubleFromExactJSON(state["last_learning_rate"])
        seconds = doubleFromExactJSON(state["seconds"])
        examples = doubleFromExactJSON(state["examples"])
        names = state["names"] as? [String] ?? []
        tokens = doubleFromExactJSON(state["tokens"])
        meanSums = (state["mean_sums"] as? [Any] ?? []).map(doubleFromExactJSON)
    }
}

// MARK: - Precomputed reference log-probs

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
            if t.comm.isMain { FileHandle.standardError.write(Data("reference log-probs read from \(path)\n".utf8)) }
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

/// A double as the hex string of its bits, for state that must come back exactly.
func exactJSON(_ x: Double) -> String { String(x.bitPattern, radix: 16) }

func doubleFromExactJSON(_ value: Any?) -> Double {
    if let s = value as? String, let bits = UInt64(s, radix: 16) { return Double(bitPattern: bits) }
    return (value as? NSNumber)?.doubleValue ?? 0
}
