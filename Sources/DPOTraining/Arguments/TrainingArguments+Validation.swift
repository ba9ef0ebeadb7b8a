import DPOKernels
import DPOSupport
import Foundation

// Refusing values that cannot work, naming the key, before any model or data is loaded.
extension TrainingArguments {
    /// Refuses values that cannot work, naming the key, before any model or data is loaded.
    /// For `.sft` the DPO-only keys (beta, loss_type, loss_weights, label_smoothing, simpo_gamma, orpo_alpha,
    /// discopop_tau, ref_model, precompute_ref_log_probs, share_prompt, max_prompt_length) are not checked: SFT ignores them.
    /// `completion_only_loss` is SFT's only and DPO ignores it.
    public func validate(for command: Command) throws {
        for (key, value) in [("model", model), ("train_file", trainFile), ("output_dir", outputDir)] {
            try check(!value.isEmpty, "\(key) is required (--\(Self.flagName(key)), or \"\(key):\" in the --config file)")
        }

        try OutputFile.checkDirectory(outputDir)

        try check(learningRate >= 0 && learningRate.isFinite, "learning_rate must be at least 0, got \(learningRate)")
        try check(Self.lrSchedulerTypes.contains(lrSchedulerType),
                  "lr_scheduler_type must be one of \(Self.lrSchedulerTypes.joined(separator: ", ")), got \"\(lrSchedulerType)\"")
        try check((0...1).contains(warmupRatio), "warmup_ratio must be in [0, 1], got \(warmupRatio)")
        try check(warmupSteps >= 0, "warmup_steps must be at least 0, got \(warmupSteps)")
        try check(weightDecay >= 0 && weightDecay.isFinite, "weight_decay must be at least 0, got \(weightDecay)")
        try check((0..<1).contains(adamBeta1), "adam_beta1 must be in [0, 1), got \(adamBeta1)")
        try check((0..<1).contains(adamBeta2), "adam_beta2 must be in [0, 1), got \(adamBeta2)")
        try check(adamEpsilon > 0 && adamEpsilon.isFinite, "adam_epsilon must be greater than 0, got \(adamEpsilon)")
        try check(maxGradNorm >= 0 && maxGradNorm.isFinite, "max_grad_norm must be at least 0 (0: no clipping), got \(maxGradNorm)")

        try check(perDeviceTrainBatchSize >= 1, "per_device_train_batch_size must be at least 1, got \(perDeviceTrainBatchSize)")
        try check(perDeviceEvalBatchSize >= 1, "per_device_eval_batch_size must be at least 1, got \(perDeviceEvalBatchSize)")
        try check(gradientAccumulationSteps >= 1, "gradient_accumulation_steps must be at least 1, got \(gradientAccumulationSteps)")
        if maxSteps <= 0 {
            try check(numTrainEpochs > 0 && numTrainEpochs.isFinite,
                      "num_train_epochs must be greater than 0 (or max_steps above 0), got \(numTrainEpochs)")
        }
        try validateMaxLength()

        if bf16, let reason = OneDNNBF16.unavailableReason() { throw DPOError("bf16 is set but \(reason)") }

        try check(loggingSteps >= 1, "logging_steps must be at least 1, got \(loggingSteps)")
        for (key, value) in [("eval_steps", evalSteps), ("save_steps", saveSteps), ("save_total_limit", saveTotalLimit)] {
            if let value { try check(value >= 1, "\(key) must be at least 1 (or null), got \(value)") }
        }
        // TRL refuses step-wise evaluation without an eval dataset; failing at the first eval would waste the run.
        if let evalSteps { try check(evalFile != nil, "eval_steps is \(evalSteps) but no eval_file is given") }
        try check(Self.saveDtypes.contains(saveDtype), "save_dtype must be float32 or bfloat16 (or fp32, bf16), got \"\(saveDtype)\"")
        try check(maxNewTokens >= 0, "max_new_tokens must be at least 0, got \(maxNewTokens)")

        try validateLoRA()
        if command == .dpo { try validateDPO() }
    }

    /// The LoRA keys, checked whether or not use_peft is set (a model that is an adapter directory
    /// trains LoRA too, with its own adapter_config.json).
    private func validateLoRA() throws {
        try check(loraR >= 1, "lora_r must be at least 1, got \(loraR)")
        try check(loraAlpha > 0 && loraAlpha.isFinite, "lora_alpha must be greater than 0, got \(loraAlpha)")
        try check(loraDropout == 0, "lora_dropout \(loraDropout) is not available: dpo-dist's LoRA has no dropout (TRL's default is 0.05); set lora_dropout: 0")
        if let targets = loraTargetModules {
            try check(!targets.isEmpty, "lora_target_modules must name at least one module (or all-linear, or null for PEFT's default)")
            try check(!targets.contains("all-linear") || targets.count == 1, "lora_target_modules: all-linear stands alone, not in a list with other names")
        }
    }

    private func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
        if !ok { throw DPOError(message()) }
    }

    private func validateDPO() throws {
        try check(beta > 0 && beta.isFinite, "beta must be greater than 0, got \(beta)")

        try check(!lossType.isEmpty, "loss_type must name at least one loss")
        for name in lossType {
            let hint = Self.nearestName(to: name, in: Self.lossTypes).map { " (did you mean \"\($0)\"?)" } ?? ""
            try check(Self.lossTypes.contains(name), "loss_type \"\(name)\" is not a known loss\(hint); known: \(Self.lossTypes.joined(separator: ", "))")
            try check(lossType.filter { $0 == name }.count == 1, "loss_type names \"\(name)\" twice")
        }
        let types = try lossTypes
        if let referenceFree = types.first(where: \.combinesOnlyWithoutReference) {
            let referenceBased = types.filter(\.usesReference).map(\.rawValue)
            try check(referenceBased.isEmpty,
                      "loss_type \"\(referenceFree.rawValue)\" is reference-free and cannot be combined with reference-based \(referenceBased.joined(separator: ", ")) (it may be combined with \(PreferenceLossType.allCases.filter { !$0.usesReference }.map(\.rawValue).joined(separator: ", ")))")
        }
        if !usesReferenceModel {
            let names = lossType.joined(separator: ", ")
            try check(refModel == nil, "ref_model is set but loss_type \(names) uses no reference model; remove ref_model")
            try check(!precomputeRefLogProbs, "precompute_ref_log_probs is set but loss_type \(names) uses no reference model")
        }

        if let lossWeights {
            try check(lossWeights.count == lossType.count,
                      "loss_weights has \(lossWeights.count) weight(s) but loss_type has \(lossType.count) loss(es); give one weight per loss type")
            for weight in lossWeights {
                try check(weight >= 0 && weight.isFinite, "loss_weights must be at least 0, got \(weight)")
            }
        }
        try check((0..<0.5).contains(labelSmoothing), "label_smoothing must be in [0, 0.5), got \(labelSmoothing)")
        if types.contains(.exoPair) {
            try check(labelSmoothing > 0, "label_smoothing must be greater than 0 for loss_type exo_pair (it is EXO's epsilon, which enters a log)")
        }
        if types.contains(.discopop) {
            try check(discopopTau > 0 && discopopTau.isFinite, "discopop_tau must be greater than 0, got \(discopopTau)")
        }
        if types.contains(.orpo) {
            try check(orpoAlpha >= 0 && orpoAlpha.isFinite, "orpo_alpha must be at least 0, got \(orpoAlpha)")
        }

        try validateMaxPromptLength()
    }

    /// `max_length`, which the data loading needs (`inspect` checks it too, loading data without training).
    public func validateMaxLength() throws {
        if let maxLength { try check(maxLength >= 2, "max_length must be at least 2 (or null for no limit), got \(maxLength)") }
    }

    /// `max_prompt_length`, DPO's: at least 1 and below `max_length` (`inspect` checks it too).
    public func validateMaxPromptLength() throws {
        if let maxPromptLength {
            try check(maxPromptLength >= 1, "max_prompt_length must be at least 1 (or null for no limit), got \(maxPromptLength)")
            if let maxLength {
                try check(maxPromptLength < maxLength,
                          "max_prompt_length (\(maxPromptLength)) must be less than max_length (\(maxLength)), leaving room for the completion")
            }
        }
    }
}
