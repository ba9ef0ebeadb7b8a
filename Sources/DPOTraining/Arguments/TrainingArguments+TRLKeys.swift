import DPOSupport
import Foundation

// Keys of TRL's DPOConfig / SFTConfig / transformers' TrainingArguments (TRL 1.16, transformers 5.24)
// that dpo-dist has no field for, so that a TRL YAML file pastes. A value that changes nothing here
// is accepted with a one-line note; a value that would change the results (or that asks for something
// dpo-dist does not do) is refused, naming the file, line and key and what to use instead. A key in
// neither `fields` nor this table is an unknown key.

extension TrainingArguments {
    /// What one value of a TRL-only key means here.
    enum TRLValue {
        /// Changes nothing in dpo-dist; the text says why.
        case harmless(String)
        /// Would change the results or cannot be done; the text says what to use instead.
        case refused(String)
    }

    typealias TRLRule = (ArgumentValue) throws -> TRLValue

    /// Any value changes nothing.
    static func ignored(_ why: String) -> TRLRule { { _ in .harmless(why) } }

    /// `harmless` (true or false; null counts as false) changes nothing; the other value is refused.
    static func only(_ harmless: Bool, _ why: String, else instead: String) -> TRLRule {
        { value in (value.isNull ? false : try value.bool()) == harmless ? .harmless(why) : .refused(instead) }
    }

    /// null, or a name among `names` (case-insensitive), changes nothing; any other value is refused.
    static func only(_ names: [String], _ why: String, else instead: String) -> TRLRule {
        { value in
            if value.isNull { return .harmless(why) }
            // YAML 1.1 reads a bare `no` (save_strategy: no) as false, as PyYAML does for TRL.
            let name = try (value.raw as? Bool).map { $0 ? "yes" : "no" } ?? value.string().trimmingCharacters(in: .whitespaces).lowercased()
            return names.contains(name) ? .harmless(why) : .refused(instead)
        }
    }

    /// null or an empty mapping changes nothing; anything else is refused.
    static func nothingOr(_ instead: String, why: String = "nothing is set") -> TRLRule {
        { value in
            if value.isNull || (value.raw as? [String: Any])?.isEmpty == true { return .harmless(why) }
            return .refused(instead)
        }
    }

    static let noDataLoader = "dpo-dist tokenizes all the data before step 1 and has no data loader"
    static let neverPads = "dpo-dist never pads: a batch's sequences are packed end to end"
    static let metricsFile = "metrics go to output_dir/metrics.jsonl, one JSON object per log"
    static let noHub = "dpo-dist does not upload"
    static let evalStrategy = only(["steps"], "dpo-dist evaluates every eval_steps (when set) and at the end",
                                   else: "set eval_steps to evaluate every N steps; without it the eval runs at the end")

    static let trlOnlyKeys: [String: TRLRule] = [
        // Precision and compute
        "fp16": only(false, "no fp16 compute", else: "dpo-dist has no fp16 compute; use bf16: true (bf16 products, fp32 accumulation)"),
        "tf32": only(false, "products are fp32, or bf16 with bf16: true",
                     else: "CPUs have no TF32; products are fp32, or bf16 with bf16: true"),
        "gradient_checkpointing_kwargs": ignored("dpo-dist's gradient_checkpointing takes no options"),
        "activation_offloading": only(false, "activations stay in memory", else: "not implemented; set it to false"),
        "use_liger_kernel": only(false, "dpo-dist has its own kernels", else: "dpo-dist has its own kernels; set it to false"),
        "torch_compile": ignored("dpo-dist is compiled ahead of time"),
        "use_cpu": ignored("dpo-dist always runs on the CPU"),
        "torch_empty_cache_steps": ignored("no GPU cache"),
        "use_cache": ignored("training keeps no KV cache"),
        "trust_remote_code": only(false, "no model code is loaded",
                                  else: "dpo-dist runs no model code from the Hub, only the architectures it implements; set it to false"),
        "average_tokens_across_devices": only(true, "SFT's loss is the mean over the trained tokens of the whole global batch; DPO's over its pairs",
                                              else: "dpo-dist's SFT loss is always the mean over the trained tokens of the whole global batch (true)"),

        // LoRA (TRL's ModelConfig): the variants dpo-dist's LoRA does not compute
        "lora_task_type": only(["causal_lm"], "dpo-dist trains causal language models",
                               else: "dpo-dist trains causal language models only (CAUSAL_LM)"),
        "use_dora": only(false, "plain LoRA", else: "DoRA is not implemented; set use_dora: false"),
        "lora_modules_to_save": { value in
            value.isNull || (value.raw as? [Any])?.isEmpty == true ? .harmless("no whole module is trained beside the adapters")
                : .refused("training whole modules beside the adapters is not implemented; remove lora_modules_to_save")
        },
        "lora_target_parameters": nothingOr("LoRA on parameters (target_parameters) is not implemented; use lora_target_modules"),

        // Data
        "padding_free": ignored(neverPads),
        "pad_to_multiple_of": ignored(neverPads),
        "pad_token": ignored(neverPads),
        "dataset_num_proc": ignored(noDataLoader),
        "dataloader_num_workers": ignored(noDataLoader),
        "dataloader_pin_memory": ignored(noDataLoader),
        "dataloader_persistent_workers": ignored(noDataLoader),
        "dataloader_prefetch_factor": ignored(noDataLoader),
        "remove_unused_columns": ignored("dpo-dist reads only the fields it uses"),
        "dataloader_drop_last": only(false, "the last short batch is trained",
                                     else: "dpo-dist trains the last short batch of an epoch; set it to false"),
        "truncation_mode": only(["keep_start"], "dpo-dist keeps the start, as TRL 1.16",
                                else: "dpo-dist keeps a sequence's start (TRL 1.16's only mode); max_prompt_length keeps a long prompt's last tokens"),
        "train_sampling_strategy": only(["random"], "dpo-dist shuffles with seed each epoch",
                                        else: "use shuffle: false for the file's order (TRL's sequential sampler), shuffle: true (the default) for a new order each epoch"),
        "data_seed": nothingOr("dpo-dist shuffles with seed; set seed instead", why: "the order follows seed"),
        "dataset_text_field": only(["text"], "SFT reads the text field",
                                   else: "dpo-dist's SFT reads rows' \"text\" field (or prompt/completion, messages); rename the field"),
        "packing": only(false, "each example is its own sequence",
                        else: "not implemented: each example is its own sequence (packed end to end, attending only to itself); set it to false"),
        "assistant_only_loss": only(false, "completion_only_loss decides",
                                    else: "not implemented; completion_only_loss trains on the completions of prompt/completion rows"),

        // DPO variants dpo-dist does not have
        "disable_dropout": only(true, "dpo-dist applies no dropout", else: "dpo-dist applies no dropout, as with disable_dropout: true"),
        "sync_ref_model": only(false, "the reference stays frozen", else: "TR-DPO's reference updates are not implemented; set it to false"),
        "ref_model_mixup_alpha": ignored("only used with sync_ref_model"),
        "ref_model_sync_steps": ignored("only used with sync_ref_model"),
        "use_weighting": only(false, "no WPO weighting", else: "WPO's weighting is not implemented; set it to false"),
        "reference_free": only(false, "the loss decides", else: "use a reference-free loss_type (simpo or orpo)"),
        "f_divergence_type": only(["reverse_kl"], "the reverse KL, TRL's default",
                                  else: "only the reverse KL (TRL's default) is implemented"),
        "f_alpha_divergence_coef": ignored("only used with f_divergence_type: alpha_divergence"),
        "ld_alpha": nothingOr("LD-DPO's length weighting is not implemented; remove ld_alpha"),
        "precompute_ref_batch_size": ignored("the batch size of the precompute does not change its log-probs"),
        "router_aux_loss_coef": ignored("no mixture-of-experts architectures"),
        "model_init_kwargs": nothingOr("dpo-dist loads the model directory as its config.json says (bf16: true for bf16 products); remove model_init_kwargs"),
        "ref_model_init_kwargs": nothingOr("dpo-dist loads the reference directory as its config.json says; remove ref_model_init_kwargs"),

        // Optimizer and schedule
        "optim": only(["adamw_torch", "adamw_torch_fused", "adamw_hf"], "dpo-dist's AdamW is torch's (decoupled weight decay, bias correction)",
                      else: "dpo-dist always uses AdamW (adam_beta1, adam_beta2, adam_epsilon, weight_decay); use optim: adamw_torch or remove it"),
        "optim_args": nothingOr("AdamW takes adam_beta1, adam_beta2, adam_epsilon and weight_decay; remove optim_args"),
        "lr_scheduler_kwargs": nothingOr("only lr_scheduler_type's own shape is available; remove lr_scheduler_kwargs"),
        "label_smoothing_factor": { value in
            try value.number() == 0 ? .harmless("no smoothing")
                : .refused("DPO's label smoothing is label_smoothing (used by robust, exo_pair, aot and aot_unpaired)")
        },
        "neftune_noise_alpha": nothingOr("NEFTune is not implemented; remove it"),
        "auto_find_batch_size": only(false, "the batch is per_device_train_batch_size",
                                     else: "set per_device_train_batch_size: the memory check before step 1 says whether it fits"),

        // Logging, eval, checkpoints
        "report_to": { value in
            let names = value.isNull || (value.raw as? [Any])?.isEmpty == true ? [] : try value.names()
            return names.allSatisfy { $0.lowercased() == "none" } ? .harmless(metricsFile)
                : .refused("dpo-dist reports to no service: \(metricsFile); set report_to: none")
        },
        "run_name": ignored("each checkpoint's trainer_state.json records the run's id"),
        "project": ignored(metricsFile),
        "logging_dir": ignored(metricsFile),
        "logging_strategy": only(["steps"], "dpo-dist logs every logging_steps", else: "dpo-dist logs every logging_steps steps; use logging_strategy: steps"),
        "logging_first_step": ignored("dpo-dist logs every logging_steps steps and the last"),
        "logging_nan_inf_filter": ignored("a non-finite loss stops the run, naming the step"),
        "include_num_input_tokens_seen": ignored("num_tokens is always logged"),
        "disable_tqdm": ignored("the progress line is one line per log"),
        "log_level": ignored("console output only"),
        "log_level_replica": ignored("console output only"),
        "log_on_each_node": ignored("rank 0 logs"),
        "skip_memory_metrics": ignored("no memory metrics"),
        "eval_strategy": evalStrategy,
        "evaluation_strategy": evalStrategy,  // the name before transformers 4.46
        "eval_accumulation_steps": ignored("eval metrics are summed over the whole eval set"),
        "save_strategy": only(["steps", "no"], "dpo-dist saves every save_steps (when set) and the final model",
                              else: "set save_steps to save every N steps; without it only the final model is saved"),
        "save_only_model": ignored("checkpoints always hold the optimizer state, so a run can resume"),
        "load_best_model_at_end": only(false, "the final model is the last step's",
                                       else: "the final model is the last step's: pick a checkpoint-STEP by its eval_ lines in metrics.jsonl"),
        "metric_for_best_model": ignored("only used with load_best_model_at_end"),
        "greater_is_better": ignored("only used with load_best_model_at_end"),
        "ignore_data_skip": only(false, "a resume continues at the checkpoint's data position",
                                 else: "a resume always continues at the checkpoint's data position; set it to false"),
        "full_determinism": ignored("a run is deterministic: the same inputs, ranks and threads give the same bits"),
        "push_to_hub": only(false, noHub, else: "\(noHub): after training, upload output_dir with `hf upload REPO_ID OUTPUT_DIR`"),
        "hub_model_id": ignored(noHub),
        "hub_strategy": ignored(noHub),
        "hub_token": ignored(noHub),
        "hub_private_repo": ignored(noHub),
        "hub_always_push": ignored(noHub),
        "hub_revision": ignored(noHub),

        // Launching
        "local_rank": ignored("ranks come from MPI"),
        "ddp_backend": ignored("the ranks talk through MPI"),
        "ddp_timeout": ignored("the ranks talk through MPI"),
        "ddp_find_unused_parameters": ignored("the ranks talk through MPI"),
        "ddp_broadcast_buffers": ignored("the ranks talk through MPI"),
        "ddp_static_graph": ignored("the ranks talk through MPI"),
        "ddp_bucket_cap_mb": ignored("dpo-dist's is --bucket-size-mb, which changes no numbers"),
        "do_train": ignored("the command says what runs"),
        "do_eval": ignored("the command says what runs"),
        "do_predict": ignored("the command says what runs"),
    ]

    /// The note for a harmless value, or the refusal, of a TRL-only key; nil for a key that is none.
    static func trlOnly(_ key: String, _ value: ArgumentValue) throws -> String? {
        guard let rule = trlOnlyKeys[key] else { return nil }
        let shown = "\(key): \(yamlShown(value.raw))"
        switch try rule(value) {
        case .harmless(let why): return "\(value.source): \(shown) changes nothing in dpo-dist (\(why))"
        case .refused(let instead): throw DPOError("\(value.source): \(shown) is not available in dpo-dist: \(instead)")
        }
    }

    /// A value as the user wrote it in YAML.
    static func yamlShown(_ value: Any) -> String {
        switch value {
        case let b as Bool: return String(b)
        case is NSNull: return "null"
        case let list as [Any]: return "[" + list.map(yamlShown).joined(separator: ", ") + "]"
        case let mapping as [String: Any]: return mapping.isEmpty ? "{}" : "{…}"
        default: return "\(value)"
        }
    }
}
