import Foundation

extension TrainingArguments {
    /// How a key reads and writes its field. One table drives `keys`, `set` and `yaml`, so they cannot drift apart.
    enum Field {
        case string(WritableKeyPath<TrainingArguments, String>)
        case optionalString(WritableKeyPath<TrainingArguments, String?>)
        case number(WritableKeyPath<TrainingArguments, Double>)
        case integer(WritableKeyPath<TrainingArguments, Int>)
        case optionalInteger(WritableKeyPath<TrainingArguments, Int?>)
        case seed(WritableKeyPath<TrainingArguments, UInt64>)
        case flag(WritableKeyPath<TrainingArguments, Bool>)
        case names(WritableKeyPath<TrainingArguments, [String]>)
        case optionalNames(WritableKeyPath<TrainingArguments, [String]?>)
        case optionalNumbers(WritableKeyPath<TrainingArguments, [Double]?>)
    }

    static let fields: [(key: String, field: Field)] = [
        ("model", .string(\.model)),
        ("ref_model", .optionalString(\.refModel)),
        ("train_file", .string(\.trainFile)),
        ("eval_file", .optionalString(\.evalFile)),
        ("output_dir", .string(\.outputDir)),
        ("beta", .number(\.beta)),
        ("loss_type", .names(\.lossType)),
        ("loss_weights", .optionalNumbers(\.lossWeights)),
        ("label_smoothing", .number(\.labelSmoothing)),
        ("simpo_gamma", .number(\.simpoGamma)),
        ("orpo_alpha", .number(\.orpoAlpha)),
        ("discopop_tau", .number(\.discopopTau)),
        ("learning_rate", .number(\.learningRate)),
        ("lr_scheduler_type", .string(\.lrSchedulerType)),
        ("warmup_ratio", .number(\.warmupRatio)),
        ("warmup_steps", .integer(\.warmupSteps)),
        ("weight_decay", .number(\.weightDecay)),
        ("adam_beta1", .number(\.adamBeta1)),
        ("adam_beta2", .number(\.adamBeta2)),
        ("adam_epsilon", .number(\.adamEpsilon)),
        ("max_grad_norm", .number(\.maxGradNorm)),
        ("per_device_train_batch_size", .integer(\.perDeviceTrainBatchSize)),
        ("per_device_eval_batch_size", .integer(\.perDeviceEvalBatchSize)),
        ("gradient_accumulation_steps", .integer(\.gradientAccumulationSteps)),
        ("num_train_epochs", .number(\.numTrainEpochs)),
        ("max_steps", .integer(\.maxSteps)),
        ("max_length", .optionalInteger(\.maxLength)),
        ("max_prompt_length", .optionalInteger(\.maxPromptLength)),
        ("seed", .seed(\.seed)),
        ("shuffle", .flag(\.shuffle)),
        ("logging_steps", .integer(\.loggingSteps)),
        ("eval_steps", .optionalInteger(\.evalSteps)),
        ("save_steps", .optionalInteger(\.saveSteps)),
        ("save_total_limit", .optionalInteger(\.saveTotalLimit)),
        ("resume_from_checkpoint", .optionalString(\.resumeFromCheckpoint)),
        ("overwrite_output_dir", .flag(\.overwriteOutputDir)),
        ("precompute_ref_log_probs", .flag(\.precomputeRefLogProbs)),
        ("share_prompt", .flag(\.sharePrompt)),
        ("save_dtype", .string(\.saveDtype)),
        ("max_new_tokens", .integer(\.maxNewTokens)),
        ("skip_invalid_rows", .flag(\.skipInvalidRows)),
        ("bf16", .flag(\.bf16)),
        ("gradient_checkpointing", .flag(\.gradientCheckpointing)),
        ("use_peft", .flag(\.usePeft)),
        ("lora_r", .integer(\.loraR)),
        ("lora_alpha", .number(\.loraAlpha)),
        ("lora_dropout", .number(\.loraDropout)),
        ("lora_target_modules", .optionalNames(\.loraTargetModules)),
        ("use_rslora", .flag(\.useRslora)),
        ("completion_only_loss", .flag(\.completionOnlyLoss)),
    ]
}
