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
            try savePolicy(to: temporary, dtype: .f32)
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
                "run_id": runID,
                "start_weights": startWeights,
                "global_batch": globalBatchSize,
                "settings": Dictionary(uniqueKeysWithValues: Self.settingsThatShapeTheRun.map { ($0, args.yamlValue(of: $0) ?? "") }),
            ]
            try ModelDirectory.writeJSON(state, to: temporary + "/trainer_state.json")
            try? fm.removeItem(atPath: final)
            do { try fm.moveItem(atPath: temporary, toPath: final) } catch {
                throw DPOError.file(final, "cannot move the finished checkpoint into place: \(error.localizedDescription)")
            }
            lastCheckpointStep = globalStep
            if let limit = args.saveTotalLimit {
                // Only this run's checkpoints are rotated, oldest first.
                for old in try checkpoints(in: args.outputDir).filter({ runID(ofCheckpoint: $0) == runID }).dropLast(limit) {
                    let path = args.outputDir + "/\(Self.checkpointPrefix)\(old)"
                    do { try fm.removeItem(atPath: path) } catch {
                        Console.note("warning: \(path): cannot remove the old checkpoint (\(error.localizedDescription))\n")
                    }
                }
            }
        }
        comm.barrier()  // no rank goes on (or reads the checkpoint) before it is complete
    }

    /// The run id a checkpoint records, nil when it has none or cannot be read.
    func runID(ofCheckpoint step: Int) -> String? {
        let path = args.outputDir + "/\(Self.checkpointPrefix)\(step)/trainer_state.json"
        guard let data = FileManager.default.contents(atPath: path),
              let state = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return state["run_id"] as? String
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

    /// Complete checkpoints' steps, oldest first; none where the directory does not exist yet. A
    /// directory that cannot be listed is an error, not "no checkpoints" (which would start afresh).
    func checkpoints(in directory: String) throws -> [Int] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: directory) else { return [] }
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: directory) } catch {
            throw DPOError.file(directory, "cannot list the directory for checkpoints: \(error.localizedDescription)")
        }
        return names.compactMap { name -> Int? in
            guard name.hasPrefix(Self.checkpointPrefix) else { return nil }
            return Int(name.dropFirst(Self.checkpointPrefix.count))
        }.sorted()
    }

    /// The arguments a resumed run must share with the checkpoint's: those that shape the numbers of
    /// the steps still to come. Paths, logging, saving and the number of steps may change.
    static let settingsThatShapeTheRun = [
        "beta", "loss_type", "loss_weights", "label_smoothing", "simpo_gamma", "orpo_alpha", "discopop_tau",
        "learning_rate", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "weight_decay", "adam_beta1",
        "adam_beta2", "adam_epsilon", "max_grad_norm", "max_length", "max_prompt_length", "seed", "shuffle", "bf16",
        "completion_only_loss", "share_prompt", "use_peft", "lora_r", "lora_alpha", "lora_target_modules", "use_rslora",
    ]

    /// Continues from a checkpoint directory, or "auto": the latest in output_dir (none: a fresh
    /// start). The checkpoint must be of this run: the same starting weights, data, global batch and
    /// settings; what differs is said and refused.
    func resumeFrom(_ spec: String) throws {
        let path: String
        if spec == "auto" {
            guard let last = try checkpoints(in: args.outputDir).last else {
                if comm.isMain { Console.note("no checkpoint in \(args.outputDir): starting from step 0\n") }
                return
            }
            path = args.outputDir + "/\(Self.checkpointPrefix)\(last)"
        } else {
            path = spec
        }
        let state = try checkpointState(path)
        let step = state.step
        try restorePolicy(from: path)
        let moments = try SafetensorsFile(path: path + "/optimizer.safetensors")
        let fullM = FloatBuffer(count: trainable.count, zeroed: false), fullV = FloatBuffer(count: trainable.count, zeroed: false)
        try moments.readFloats("exp_avg", into: fullM.buffer)
        try moments.readFloats("exp_avg_sq", into: fullV.buffer)
        optimizer.m.pointer.update(from: fullM.pointer + optimizer.shard.lowerBound, count: optimizer.shard.count)
        optimizer.v.pointer.update(from: fullV.pointer + optimizer.shard.lowerBound, count: optimizer.shard.count)
        optimizer.step = step
        globalStep = step
        lastCheckpointStep = step
        tokensSeen = doubleFromExactJSON(state.values["num_tokens"])
        window = LogWindow(state: state.values["log_window"] as? [String: Any] ?? [:])
        if let id = state.values["run_id"] as? String { runID = id }
        if comm.isMain {
            if let ranks = state.values["world_size"] as? Int, ranks != comm.worldSize {
                Console.note("note: \(path) was written by \(ranks) rank(s), resumed on \(comm.worldSize) with the same global batch: the same numbers\n")
            }
            if let total = state.values["max_steps"] as? Int, total != totalSteps {
                Console.note("note: \(path) was made by a run of \(total) steps, this one has \(totalSteps): the learning-rate schedule follows the new total\n")
            }
            Console.note("resumed from \(path) at step \(step)\n")
        }
    }

    /// trainer_state.json of a checkpoint, checked: readable, a sane step, and made by this run.
    func checkpointState(_ path: String) throws -> (step: Int, values: [String: Any]) {
        let statePath = path + "/trainer_state.json"
        guard let data = FileManager.default.contents(atPath: statePath) else {
            throw DPOError.file(statePath, FileManager.default.fileExists(atPath: path)
                                ? "missing or unreadable: not a complete dpo-dist checkpoint" : "no such checkpoint")
        }
        guard let state = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw DPOError.file(statePath, "is not a JSON object: the checkpoint is damaged")
        }
        guard let step = state["global_step"] as? Int, step >= 1, let adamStep = state["adam_step"] as? Int, adamStep == step,
              let total = state["max_steps"] as? Int, step <= total else {
            throw DPOError.file(statePath, "global_step, adam_step or max_steps is missing or impossible (\(state["global_step"] ?? "none"), \(state["adam_step"] ?? "none"), \(state["max_steps"] ?? "none")): the checkpoint is damaged")
        }
        var differences: [String] = []
        if let weights = state["start_weights"] as? String, weights != startWeights {
            differences.append("it was trained from other starting weights than --model \(args.model)")
        }
        if let fingerprint = state["train_fingerprint"] as? String, fingerprint != String(objective.fingerprint, radix: 16) {
            differences.append("other training data or tokenization (train_file, max_length, max_prompt_length)")
        }
        if let batch = state["global_batch"] as? Int, batch != globalBatchSize {
            differences.append("global batch \(batch) there, \(globalBatchSize) now (per_device_train_batch_size × gradient_accumulation_steps × ranks)")
        }
        if let settings = state["settings"] as? [String: String] {
            for key in Self.settingsThatShapeTheRun {
                if let there = settings[key], let here = args.yamlValue(of: key), there != here {
                    differences.append("\(key) \(there) there, \(here) now")
                }
            }
        }
        guard differences.isEmpty else {
            throw DPOError.file(path, "is not a checkpoint of this run: \(differences.joined(separator: "; ")); resume with the run's own settings, or start afresh in another --output-dir")
        }
        return (step, state)
    }
}