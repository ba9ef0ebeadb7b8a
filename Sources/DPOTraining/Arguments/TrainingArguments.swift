import Foundation

/// Everything `dpo-dist train` and `dpo-dist sft` take. Names are TRL's `DPOConfig` / `SFTConfig` /
/// `TrainingArguments` fields (snake_case in YAML, kebab-case on the command line); defaults are TRL's,
/// except where a comment says why not.
public struct TrainingArguments: Equatable, Sendable {
    // Model and data
    public var model: String = ""
    /// nil: a frozen copy of `model`.
    public var refModel: String?
    public var trainFile: String = ""
    public var evalFile: String?
    public var outputDir: String = ""

    // DPO
    public var beta: Double = 0.1
    public var lossType: [String] = ["sigmoid"]
    /// nil: 1.0 for each loss type.
    public var lossWeights: [Double]?
    public var labelSmoothing: Double = 0
    /// SimPO target reward margin (`simpo` loss).
    public var simpoGamma: Double = 0.5
    /// ORPO's weight of the odds-ratio term (`orpo` loss).
    public var orpoAlpha: Double = 0.1
    public var discopopTau: Double = 0.05

    // Optimizer and schedule
    public var learningRate: Double = 1e-6
    /// constant, linear, cosine (each with warmup), constant_with_warmup, cosine_with_min_lr is not offered.
    public var lrSchedulerType: String = "linear"
    public var warmupRatio: Double = 0
    public var warmupSteps: Int = 0
    public var weightDecay: Double = 0
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEpsilon: Double = 1e-8
    public var maxGradNorm: Double = 1.0

    // Batches and length
    public var perDeviceTrainBatchSize: Int = 8
    public var perDeviceEvalBatchSize: Int = 8
    public var gradientAccumulationSteps: Int = 1
    public var numTrainEpochs: Double = 3
    /// > 0 overrides num_train_epochs.
    public var maxSteps: Int = -1
    /// Prompt + completion, truncated keeping the start. nil: no limit.
    public var maxLength: Int? = 1024
    /// As TRL before 1.0: a longer prompt keeps its last tokens. nil: no limit.
    public var maxPromptLength: Int?
    public var seed: UInt64 = 42
    public var shuffle: Bool = true

    // Logging, eval, checkpoints
    public var loggingSteps: Int = 10
    /// nil: evaluate only at the end (when there is an eval file).
    public var evalSteps: Int?
    /// nil: save only the final model.
    public var saveSteps: Int?
    public var saveTotalLimit: Int?
    /// A checkpoint directory, or "auto" for the latest in output_dir.
    public var resumeFromCheckpoint: String?
    /// A fresh run into an output_dir that holds checkpoints deletes them instead of refusing to start.
    public var overwriteOutputDir: Bool = false
    public var precomputeRefLogProbs: Bool = false
    /// Each pair's prompt computed once for both completions (the rejected completion attends to the
    /// chosen sequence's prompt rows). The same numbers as separate sequences up to fp32 rounding;
    /// false packs prompt + chosen and prompt + rejected apart, as TRL does. Not a TRL option.
    public var sharePrompt: Bool = true
    /// float32 or bfloat16.
    public var saveDtype: String = "float32"
    public var maxNewTokens: Int = 64
    public var skipInvalidRows: Bool = false
    /// Matrix products in bf16 with fp32 accumulation (oneDNN); weights, gradients, optimizer state
    /// and reductions stay fp32. TRL's name; false: fp32 throughout.
    public var bf16: Bool = false
    /// Backward recomputes each layer's forward from its input instead of keeping every layer's
    /// activations: less memory, about one more forward pass of time, the same bits. TRL's name
    /// (transformers 5 also reads `activation_checkpointing`); TRL's DPOConfig defaults it to true,
    /// dpo-dist to false.
    public var gradientCheckpointing: Bool = false

    // LoRA: TRL's ModelConfig names, turned into PEFT's LoraConfig as TRL's get_peft_config does
    /// Train LoRA adapters beside the frozen `model` instead of all its weights.
    public var usePeft: Bool = false
    public var loraR: Int = 16
    public var loraAlpha: Double = 32
    /// 0 only: dpo-dist's LoRA has no dropout, and TRL's default (0.05) is refused rather than
    /// ignored, so the default here is 0.
    public var loraDropout: Double = 0
    /// Module names, or ["all-linear"]; nil: PEFT's default for the model type (q_proj, v_proj for
    /// Llama and Qwen2).
    public var loraTargetModules: [String]?
    /// Scaling alpha/√r instead of alpha/r.
    public var useRslora: Bool = false

    // SFT
    /// Loss on completion tokens only (prompt/completion and messages data).
    public var completionOnlyLoss: Bool = true

    public init() {}
}
