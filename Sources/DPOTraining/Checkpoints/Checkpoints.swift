import DPOKernels
import DPOModel
import DPOSupport
import Foundation
import Safetensors

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
            // The entries point into the buffers: they must live until the file is written.
            try withExtendedLifetime((fullM, fullV)) {
                let entries = [
                    SafetensorsWriter.Entry(name: "exp_avg", shape: [fullM.count], data: UnsafeBufferPointer(fullM.buffer)),
                    SafetensorsWriter.Entry(name: "exp_avg_sq", shape: [fullV.count], data: UnsafeBufferPointer(fullV.buffer)),
                ]
                try SafetensorsWriter.write(path: temporary + "/optimizer.safetensors", entries: entries, dtype: .f32,
                                            metadata: ["adam_step": "\(optimizer.step)"])
            }
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

    /// The optimizer moments over the whole trainable set (gathered from the shards under ZeRO-1).
    func gatheredMoments() -> (FloatBuffer, FloatBuffer) {
        guard optimizer.shard.count != trainable.count else { return (optimizer.m, optimizer.v) }
        let n = trainable.count, lower = optimizer.shard.lowerBound
        let m = FloatBuffer(count: n), v = FloatBuffer(count: n)
        (m.pointer + lower).update(from: optimizer.m.pointer, count: optimizer.shard.count)
        (v.pointer + lower).update(from: optimizer.v.pointer, count: optimizer.shard.count)
        sync.gatherShards(m)
        sync.gatherShards(v)
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
                if comm.isMain { Console.note("no checkpoint in \(args.outputDir): starting from step 0\n") }
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
        policy.parameters.values.copy(from: loaded.parameters.values)
        let moments = try SafetensorsFile(path: path + "/optimizer.safetensors")
        let fullM = FloatBuffer(count: trainable.count, zeroed: false), fullV = FloatBuffer(count: trainable.count, zeroed: false)
        try moments.readFloats("exp_avg", into: fullM.buffer)
        try moments.readFloats("exp_avg_sq", into: fullV.buffer)
        optimizer.m.pointer.update(from: fullM.pointer + optimizer.shard.lowerBound, count: optimizer.shard.count)
        optimizer.v.pointer.update(from: fullV.pointer + optimizer.shard.lowerBound, count: optimizer.shard.count)
        optimizer.step = adamStep
        globalStep = step
        tokensSeen = doubleFromExactJSON(state["num_tokens"])
        window = LogWindow(state: state["log_window"] as? [String: Any] ?? [:])
        if comm.isMain { Console.note("resumed from \(path) at step \(step)\n") }
    }
}
