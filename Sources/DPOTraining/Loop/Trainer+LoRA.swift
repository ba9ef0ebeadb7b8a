import DPOKernels
import DPOModel
import DPOSupport
import Foundation
import Safetensors

// LoRA as TRL 1.16 with PEFT 0.21 trains it: `use_peft` puts PEFT-initialised adapters beside the
// frozen `model`; a `model` that is a PEFT adapter directory continues that adapter on its base.
// The trainer then optimises, reduces, clips, checkpoints and resumes the adapters' ParameterSet.
extension Trainer {
    /// Where a run's policy comes from.
    struct PolicySource {
        /// The directory of the base weights: `model`, or the adapter's base_model_name_or_path.
        let baseDirectory: String
        /// The adapter directory `model` names, nil for a whole model.
        let adapterDirectory: String?
        /// The adapter's settings when training LoRA (from use_peft or adapter_config.json), else nil.
        let lora: LoRASettings?
        /// Where the tokenizer files are: the adapter directory when it has tokenizer.json, else the base.
        let tokenizerDirectory: String
        /// The adapter directory's lora_dropout (0 otherwise): training refuses it, an eval ignores it
        /// (PEFT applies no dropout in eval mode).
        let adapterDropout: Double

        init(_ args: TrainingArguments) throws {
            guard AdapterDirectory.isAdapter(args.model) else {
                baseDirectory = args.model
                adapterDirectory = nil
                tokenizerDirectory = args.model
                adapterDropout = 0
                guard args.usePeft else { lora = nil; return }
                let (config, _) = try ModelDirectory.loadConfig(args.model)
                let modelType = config.architecture.modelType
                guard let targets = args.loraTargetModules ?? LoRASettings.peftDefaultTargets[modelType] else {
                    throw DPOError("lora_target_modules is not set and PEFT has no default target modules for model_type \(modelType); name them (q_proj,v_proj, ...) or use all-linear")
                }
                lora = LoRASettings(rank: args.loraR, alpha: args.loraAlpha, targets: targets, rslora: args.useRslora)
                return
            }
            let config = try AdapterDirectory.readConfig(args.model)
            adapterDropout = config.dropout
            baseDirectory = config.baseDirectory
            adapterDirectory = args.model
            lora = config.settings
            tokenizerDirectory = AdapterDirectory.tokenizerDirectory(args.model, base: config.baseDirectory)
        }
    }

    /// The policy of a run: `model` as it is, or its base with adapters (read from the adapter
    /// directory, or PEFT-initialised from `seed`).
    static func loadPolicy(_ args: TrainingArguments, source: PolicySource) throws -> ModelDirectory.Loaded {
        // A LoRA base is never updated: its BF16 linears stay in the files' mappings.
        let loaded = try ModelDirectory.load(source.baseDirectory, matmul: try args.makeMatmul(), frozen: source.lora != nil)
        guard let settings = source.lora else { return loaded }
        let adapters = try LoRAAdapters(layout: loaded.model.layout, config: loaded.model.config, settings: settings)
        if let directory = source.adapterDirectory {
            try AdapterDirectory.readWeights(directory, into: adapters)
        } else {
            adapters.initializeAsPEFT(seed: args.seed)
        }
        loaded.model.attach(adapters)
        return loaded
    }

    /// The reference of a LoRA run without ref_model: the policy's own base weights (no copy) with
    /// the adapters off, or, when training continues an adapter directory, with that starting
    /// adapter (TRL 1.16 copies a PEFT model's adapter into a frozen "ref" adapter). Read from the
    /// directory again, so it is the starting adapter also when loaded after training.
    static func loraReference(args: TrainingArguments, policy: Transformer) throws -> Transformer {
        let source = try PolicySource(args)
        var start: LoRAAdapters?
        if let directory = source.adapterDirectory, let settings = source.lora {
            let adapters = try LoRAAdapters(layout: policy.layout, config: policy.config, settings: settings)
            try AdapterDirectory.readWeights(directory, into: adapters)
            start = adapters
        }
        return policy.sharingWeights(adapters: start, matmul: try args.makeMatmul())
    }

    /// Training an adapter whose config asks for dropout is refused: dpo-dist's LoRA has none.
    func checkAdapterDropout() throws {
        guard policySource.adapterDropout != 0, let directory = policySource.adapterDirectory else { return }
        throw DPOError.file(directory + "/" + AdapterDirectory.configFile, "lora_dropout is \(policySource.adapterDropout): dpo-dist's LoRA has no dropout; to train this adapter without it, set lora_dropout to 0 in a copy of the adapter directory")
    }

    /// Writes the policy: a LoRA run its adapter (PEFT's files, base_model_name_or_path the base
    /// directory), any other run the whole model.
    func savePolicy(to directory: String, dtype: SafetensorsDType) throws {
        if let adapters = policy.adapters {
            try AdapterDirectory.save(adapters, to: directory, baseModel: policySource.baseDirectory,
                                      companionsFrom: policySource.tokenizerDirectory, dtype: dtype)
        } else {
            try ModelDirectory.save(policy, to: directory, configJSON: policyConfigJSON, companionsFrom: modelDirectory, dtype: dtype)
        }
    }

    /// Restores the trained values from a checkpoint: the adapter of a LoRA run, else the whole model.
    func restorePolicy(from path: String) throws {
        if let adapters = policy.adapters {
            guard AdapterDirectory.isAdapter(path) else {
                throw DPOError.file(path, "holds no \(AdapterDirectory.configFile): not a checkpoint of a LoRA run")
            }
            let saved = try AdapterDirectory.readConfig(path).settings
            guard saved.rank == adapters.settings.rank, saved.alpha == adapters.settings.alpha, saved.rslora == adapters.settings.rslora else {
                throw DPOError.file(path, "holds an adapter of r \(saved.rank), lora_alpha \(saved.alpha), use_rslora \(saved.rslora); this run's has r \(adapters.settings.rank), lora_alpha \(adapters.settings.alpha), use_rslora \(adapters.settings.rslora)")
            }
            try AdapterDirectory.readWeights(path, into: adapters)
            return
        }
        let loaded = try ModelDirectory.load(path).model
        guard loaded.parameterCount == policy.parameterCount else {
            throw DPOError.file(path, "holds a model of another shape than \(args.model)")
        }
        policy.parameters.values.copy(from: loaded.parameters.values)
    }
}
