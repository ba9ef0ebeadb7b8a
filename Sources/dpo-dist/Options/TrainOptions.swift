import ArgumentParser
import DPOTraining

/// TRL's defaults, shown in the help text so that it cannot disagree with what a run uses.
private let trl = TrainingArguments.defaults(for: .dpo)
private let trlSFT = TrainingArguments.defaults(for: .sft)

/// The options of `dpo-dist train` and `dpo-dist sft`: a YAML file (`--config`) and one flag per key,
/// named as TRL's field in kebab case (`learning_rate` → `--learning-rate`). A flag overrides the file.
///
/// Every value is taken as text and read by `TrainingArguments.set`, so a flag and a YAML line accept
/// the same spellings ("5e-7", "null", "sigmoid,hinge") and fail with the same one-line messages.
/// Numeric options parse `.unconditional`ly so that `--max-steps -1` reads -1 rather than an option named "-1".
struct TrainOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A YAML file of training arguments: TRL's names in snake_case (see examples/dpo.yaml). Flags override it.", valueName: "file"))
    var config: String?

    // MARK: Model and data

    @Option(help: ArgumentHelp("The model to train: a Hugging Face model directory (required).", valueName: "dir"))
    var model: String?
    @Option(help: ArgumentHelp("DPO's frozen reference model directory (default: a frozen copy of --model).", valueName: "dir"))
    var refModel: String?
    @Option(help: ArgumentHelp("Training data: JSONL or a JSON array; prompt/chosen/rejected rows for train, prompt/completion, messages or text rows for sft (required).", valueName: "file"))
    var trainFile: String?
    @Option(help: ArgumentHelp("Evaluation data, same format as --train-file (default: none).", valueName: "file"))
    var evalFile: String?
    @Option(help: ArgumentHelp("Where checkpoints, the final model, logs and training_args.yaml go (required).", valueName: "dir"))
    var outputDir: String?

    // MARK: DPO loss (train only; sft ignores these)

    @Option(parsing: .unconditional, help: ArgumentHelp("DPO's beta: smaller keeps the policy closer to the reference (default: \(trl.beta); the course advises 0.1 to 0.5).", valueName: "number"))
    var beta: String?
    @Option(help: ArgumentHelp("Loss type, or several separated by commas: \(TrainingArguments.lossTypes.joined(separator: ", ")). simpo and orpo are reference-free and combine only with each other and sft (default: \(trl.lossType.joined(separator: ","))).", valueName: "names"))
    var lossType: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("One weight per loss type, separated by commas (default: 1.0 each).", valueName: "numbers"))
    var lossWeights: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Label smoothing epsilon in [0, 0.5), used by robust, exo_pair, aot and aot_unpaired (default: \(trl.labelSmoothing)).", valueName: "number"))
    var labelSmoothing: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("SimPO's target reward margin gamma (default: \(trl.simpoGamma)).", valueName: "number"))
    var simpoGamma: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("ORPO's weight of the odds-ratio term (default: \(trl.orpoAlpha)).", valueName: "number"))
    var orpoAlpha: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("DiscoPOP's temperature tau (default: \(trl.discopopTau)).", valueName: "number"))
    var discopopTau: String?

    // MARK: Optimizer and schedule

    @Option(parsing: .unconditional, help: ArgumentHelp("Peak learning rate of AdamW (default: \(trl.learningRate) for train as TRL's DPOConfig, \(trlSFT.learningRate) for sft as SFTConfig; the course advises 5e-7 to 5e-6 for DPO).", valueName: "number"))
    var learningRate: String?
    @Option(help: ArgumentHelp("Learning-rate schedule after warmup: \(TrainingArguments.lrSchedulerTypes.joined(separator: ", ")) (default: \(trl.lrSchedulerType)).", valueName: "name"))
    var lrSchedulerType: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Share of the total steps spent warming up linearly from 0, in [0, 1] (default: \(trl.warmupRatio)).", valueName: "number"))
    var warmupRatio: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Warmup steps; when above 0 it replaces --warmup-ratio (default: \(trl.warmupSteps)).", valueName: "n"))
    var warmupSteps: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("AdamW's decoupled weight decay (default: \(trl.weightDecay)).", valueName: "number"))
    var weightDecay: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("AdamW's beta1 (default: \(trl.adamBeta1)).", valueName: "number"))
    var adamBeta1: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("AdamW's beta2 (default: \(trl.adamBeta2)).", valueName: "number"))
    var adamBeta2: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("AdamW's epsilon (default: \(trl.adamEpsilon)).", valueName: "number"))
    var adamEpsilon: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Clip the global gradient norm to this; 0 turns clipping off (default: \(trl.maxGradNorm)).", valueName: "number"))
    var maxGradNorm: String?

    // MARK: Batches and length

    @Option(parsing: .unconditional, help: ArgumentHelp("Examples (pairs for train) per rank per micro-batch (default: \(trl.perDeviceTrainBatchSize)). The global batch is this × ranks × --gradient-accumulation-steps.", valueName: "n"))
    var perDeviceTrainBatchSize: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Examples per rank per evaluation batch (default: \(trl.perDeviceEvalBatchSize)).", valueName: "n"))
    var perDeviceEvalBatchSize: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Micro-batches whose gradients are summed before each optimizer step (default: \(trl.gradientAccumulationSteps)).", valueName: "n"))
    var gradientAccumulationSteps: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Passes over the training data, may be fractional (default: \(trl.numTrainEpochs)).", valueName: "number"))
    var numTrainEpochs: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Total optimizer steps; above 0 it replaces --num-train-epochs (default: \(trl.maxSteps)).", valueName: "n"))
    var maxSteps: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Longest prompt + completion in tokens, truncated keeping the start; null for no limit (default: \(optional(trl.maxLength))).", valueName: "n"))
    var maxLength: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Longest prompt in tokens, keeping its last tokens as TRL before 1.0 did; null for no limit (default: \(optional(trl.maxPromptLength))). Train only.", valueName: "n"))
    var maxPromptLength: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Seed for shuffling and initialisation (default: \(trl.seed)).", valueName: "n"))
    var seed: String?
    @Flag(inversion: .prefixedNo, help: "Shuffle the training data each epoch (default: \(trl.shuffle)).")
    var shuffle: Bool?

    // MARK: Logging, evaluation, checkpoints

    @Option(parsing: .unconditional, help: ArgumentHelp("Log metrics every N optimizer steps (default: \(trl.loggingSteps)).", valueName: "n"))
    var loggingSteps: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Evaluate every N steps; needs --eval-file (default: \(optional(trl.evalSteps)), evaluate once at the end when there is an eval file).", valueName: "n"))
    var evalSteps: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Save a checkpoint every N steps (default: \(optional(trl.saveSteps)), save only the final model).", valueName: "n"))
    var saveSteps: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep at most N checkpoints, deleting the oldest (default: \(optional(trl.saveTotalLimit)), keep all).", valueName: "n"))
    var saveTotalLimit: String?
    @Option(help: ArgumentHelp("Resume from this checkpoint directory, or \"auto\" for the latest in --output-dir (default: \(optional(trl.resumeFromCheckpoint))).", valueName: "dir"))
    var resumeFromCheckpoint: String?
    @Flag(inversion: .prefixedNo, help: "Start afresh in an --output-dir that holds checkpoints, deleting them (default: \(trl.overwriteOutputDir): such a run is refused, since resuming is what the checkpoints are for).")
    var overwriteOutputDir: Bool?
    @Flag(inversion: .prefixedNo, help: "Compute the reference log-probs once before training and free the reference model (default: \(trl.precomputeRefLogProbs)). Train only.")
    var precomputeRefLogProbs: Bool?
    @Flag(inversion: .prefixedNo, help: "Compute each pair's prompt once for both completions; --no-share-prompt packs prompt+chosen and prompt+rejected apart, as TRL does (default: \(trl.sharePrompt); the same numbers up to rounding). Train only.")
    var sharePrompt: Bool?
    @Option(help: ArgumentHelp("Dtype of saved weights: float32 or bfloat16, also fp32 or bf16 (default: \(trl.saveDtype)).", valueName: "dtype"))
    var saveDtype: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Tokens to generate for evaluation samples (default: \(trl.maxNewTokens)).", valueName: "n"))
    var maxNewTokens: String?
    @Flag(inversion: .prefixedNo, help: "Skip invalid data rows and report how many, instead of stopping at the first (default: \(trl.skipInvalidRows)).")
    var skipInvalidRows: Bool?

    // MARK: Precision and memory

    @Flag(inversion: .prefixedNo, help: "Matrix products in bf16 with fp32 accumulation through oneDNN (AMX or AVX512-BF16); weights, gradients and optimizer state stay fp32 (default: \(trl.bf16)).")
    var bf16: Bool?
    @Flag(inversion: .prefixedNo, help: "Recompute each layer's forward in backward from its saved input instead of keeping every layer's activations: less memory, about one more forward pass of time, the same numbers (default: \(trl.gradientCheckpointing); TRL's default is true).")
    var gradientCheckpointing: Bool?

    // MARK: LoRA (TRL's ModelConfig names)

    @Flag(inversion: .prefixedNo, help: "Train LoRA adapters (PEFT's format) beside the frozen --model instead of all its weights; the reference is the model with the adapters off (default: \(trl.usePeft)). A --model that is a PEFT adapter directory trains that adapter.")
    var usePeft: Bool?
    @Option(parsing: .unconditional, help: ArgumentHelp("LoRA rank r (default: \(trl.loraR)).", valueName: "n"))
    var loraR: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("LoRA alpha: the adapters are scaled by alpha/r (default: \(trl.loraAlpha)).", valueName: "number"))
    var loraAlpha: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("LoRA dropout: only 0 (default: \(trl.loraDropout); TRL's is 0.05, which dpo-dist refuses).", valueName: "number"))
    var loraDropout: String?
    @Option(help: ArgumentHelp("Linears to adapt, separated by commas (q_proj,v_proj), or all-linear: every linear of the decoder layers, not the LM head (default: PEFT's for the model type: q_proj,v_proj for Llama and Qwen2).", valueName: "names"))
    var loraTargetModules: String?
    @Flag(inversion: .prefixedNo, help: "Rank-stabilised LoRA: scale by alpha/sqrt(r) (default: \(trl.useRslora)).")
    var useRslora: Bool?

    // MARK: SFT

    @Flag(inversion: .prefixedNo, help: "Train on completion tokens only, for prompt/completion and messages data (default: \(trl.completionOnlyLoss)). SFT only.")
    var completionOnlyLoss: Bool?

    /// The flags the user gave, as (YAML key, text), in the order of `TrainingArguments.keys`.
    var overrides: [(key: String, value: String)] {
        let all: [(key: String, value: String?)] = [
            ("model", model), ("ref_model", refModel), ("train_file", trainFile), ("eval_file", evalFile),
            ("output_dir", outputDir),
            ("beta", beta), ("loss_type", lossType), ("loss_weights", lossWeights),
            ("label_smoothing", labelSmoothing), ("simpo_gamma", simpoGamma), ("orpo_alpha", orpoAlpha),
            ("discopop_tau", discopopTau),
            ("learning_rate", learningRate), ("lr_scheduler_type", lrSchedulerType), ("warmup_ratio", warmupRatio),
            ("warmup_steps", warmupSteps), ("weight_decay", weightDecay), ("adam_beta1", adamBeta1),
            ("adam_beta2", adamBeta2), ("adam_epsilon", adamEpsilon), ("max_grad_norm", maxGradNorm),
            ("per_device_train_batch_size", perDeviceTrainBatchSize),
            ("per_device_eval_batch_size", perDeviceEvalBatchSize),
            ("gradient_accumulation_steps", gradientAccumulationSteps), ("num_train_epochs", numTrainEpochs),
            ("max_steps", maxSteps), ("max_length", maxLength), ("max_prompt_length", maxPromptLength),
            ("seed", seed), ("shuffle", shuffle.map { String($0) }),
            ("logging_steps", loggingSteps), ("eval_steps", evalSteps), ("save_steps", saveSteps),
            ("save_total_limit", saveTotalLimit), ("resume_from_checkpoint", resumeFromCheckpoint),
            ("overwrite_output_dir", overwriteOutputDir.map { String($0) }),
            ("precompute_ref_log_probs", precomputeRefLogProbs.map { String($0) }),
            ("share_prompt", sharePrompt.map { String($0) }), ("save_dtype", saveDtype),
            ("max_new_tokens", maxNewTokens), ("skip_invalid_rows", skipInvalidRows.map { String($0) }),
            ("bf16", bf16.map { String($0) }), ("gradient_checkpointing", gradientCheckpointing.map { String($0) }),
            ("use_peft", usePeft.map { String($0) }), ("lora_r", loraR), ("lora_alpha", loraAlpha),
            ("lora_dropout", loraDropout), ("lora_target_modules", loraTargetModules),
            ("use_rslora", useRslora.map { String($0) }),
            ("completion_only_loss", completionOnlyLoss.map { String($0) }),
        ]
        // A key added to TrainingArguments needs its flag here too.
        assert(all.map(\.key) == TrainingArguments.keys, "TrainOptions lists other keys than TrainingArguments.keys")
        return all.compactMap { key, value in value.map { (key: key, value: $0) } }
    }

    /// TRL's defaults for the command, then `--config`, then the flags given; refused before any work
    /// if a value cannot work. Errors are `DPOError`s of one line naming the file or flag and the key.
    /// With `notes`, a TRL key that changes nothing here is said in one line on stderr.
    func resolve(command: TrainingArguments.Command, notes: Bool) throws -> TrainingArguments {
        let arguments = try TrainingArguments.load(yamlFile: config, overrides: overrides, command: command,
                                                   note: { if notes { note("note: " + $0) } })
        try arguments.validate(for: command)
        return arguments
    }
}

private func optional<T>(_ x: T?) -> String { x.map { "\($0)" } ?? "null" }
