import DPOTestSupport
import Foundation
import XCTest
@testable import DPOSupport
@testable import DPOTraining

/// The configuration of `train` and `sft`: a YAML file and flags, flags winning; every key both ways;
/// impossible values refused by key before any work; the resolved YAML reads back to the same arguments.
final class TrainConfigTests: XCTestCase {
    typealias Args = TrainingArguments

    /// The three keys without a default, so that a config validates.
    static let required = [(key: "model", value: "models/base"), (key: "train_file", value: "pairs.jsonl"),
                           (key: "output_dir", value: "runs/dpo")]

    func writeYAML(_ text: String, name: String = "dpo.yaml") throws -> String {
        let path = Fixtures.temporaryDirectory() + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The message of the `DPOError` that `body` throws, or a test failure if it throws none.
    func message(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try body()
        } catch let error as DPOError {
            return error.message
        } catch {
            XCTFail("not a DPOError: \(error)", file: file, line: line)
            return ""
        }
        XCTFail("expected an error", file: file, line: line)
        return ""
    }

    // MARK: Loading and precedence

    func testCourseExampleLoads() throws {
        // The course's DPOConfig(beta=0.1, learning_rate=5e-7, max_prompt_length=512, max_length=1024,
        // per_device_train_batch_size=4, gradient_accumulation_steps=4, num_train_epochs=1) as YAML.
        let path = try writeYAML("""
            model: models/sft
            train_file: data/pairs.jsonl
            output_dir: runs/dpo
            beta: 0.1
            learning_rate: 5e-7
            max_prompt_length: 512
            max_length: 1024
            per_device_train_batch_size: 4
            gradient_accumulation_steps: 4
            num_train_epochs: 1
            """)
        let args = try Args.load(yamlFile: path, overrides: [])
        try args.validate(for: .dpo)
        XCTAssertEqual(args.beta, 0.1)
        XCTAssertEqual(args.learningRate, 5e-7)
        XCTAssertEqual(args.maxPromptLength, 512)
        XCTAssertEqual(args.maxLength, 1024)
        XCTAssertEqual(args.perDeviceTrainBatchSize, 4)
        XCTAssertEqual(args.gradientAccumulationSteps, 4)
        XCTAssertEqual(args.numTrainEpochs, 1)
        XCTAssertEqual(args.lossType, ["sigmoid"], "untouched keys keep TRL's defaults")
    }

    func testExampleConfigsLoadAndValidate() throws {
        let examples = Fixtures.repositoryRoot + "/examples"
        let dpo = try Args.load(yamlFile: examples + "/dpo.yaml", overrides: [], command: .dpo)
        try dpo.validate(for: .dpo)
        XCTAssertEqual(dpo.beta, 0.1)
        XCTAssertEqual(dpo.learningRate, 5e-7)
        XCTAssertEqual(dpo.maxPromptLength, 512)
        XCTAssertEqual(dpo.maxLength, 1024)
        XCTAssertEqual(dpo.perDeviceTrainBatchSize, 4)
        XCTAssertEqual(dpo.gradientAccumulationSteps, 4)
        XCTAssertEqual(dpo.numTrainEpochs, 1)
        let sft = try Args.load(yamlFile: examples + "/sft.yaml", overrides: [], command: .sft)
        try sft.validate(for: .sft)
    }

    func testFlagsOverrideTheFileAndLaterFlagsWin() throws {
        let path = try writeYAML("beta: 0.1\nlearning_rate: 5e-7\nshuffle: true\n")
        let args = try Args.load(yamlFile: path, overrides: [("beta", "0.3"), ("shuffle", "false"), ("beta", "0.25")])
        XCTAssertEqual(args.beta, 0.25)
        XCTAssertEqual(args.learningRate, 5e-7, "a key without a flag keeps the file's value")
        XCTAssertFalse(args.shuffle)
        // No file at all: defaults, then flags.
        XCTAssertEqual(try Args.load(yamlFile: nil, overrides: [("beta", "0.5")]).beta, 0.5)
        XCTAssertEqual(try Args.load(yamlFile: nil, overrides: []), Args())
    }

    func testSFTDefaultsToSFTConfigsLearningRate() throws {
        XCTAssertEqual(try Args.load(yamlFile: nil, overrides: [], command: .sft).learningRate, 2e-5)
        XCTAssertEqual(try Args.load(yamlFile: nil, overrides: [], command: .dpo).learningRate, 1e-6)
        XCTAssertEqual(try Args.load(yamlFile: nil, overrides: [("learning_rate", "1e-5")], command: .sft).learningRate, 1e-5)
    }

    func testAFileOfOnlyCommentsSetsNothing() throws {
        let path = try writeYAML("# everything commented out\n# beta: 0.2\n")
        XCTAssertEqual(try Args.load(yamlFile: path, overrides: []), Args())
    }

    // MARK: Every key, both ways

    /// A value other than the default for every key: (key, as YAML, as a flag).
    static let samples: [(key: String, yaml: String, flag: String)] = [
        ("model", "models/sft", "models/sft"),
        ("ref_model", "models/ref", "models/ref"),
        ("train_file", "train.jsonl", "train.jsonl"),
        ("eval_file", "eval.jsonl", "eval.jsonl"),
        ("output_dir", "runs/x", "runs/x"),
        ("beta", "0.25", "0.25"),
        ("loss_type", "[sigmoid, sft]", "sigmoid,sft"),
        ("loss_weights", "[1.0, 0.5]", "1.0,0.5"),
        ("label_smoothing", "0.1", "0.1"),
        ("simpo_gamma", "1.0", "1.0"),
        ("orpo_alpha", "0.2", "0.2"),
        ("discopop_tau", "0.1", "0.1"),
        ("learning_rate", "5e-7", "5e-7"),
        ("lr_scheduler_type", "cosine", "cosine"),
        ("warmup_ratio", "0.1", "0.1"),
        ("warmup_steps", "10", "10"),
        ("weight_decay", "0.01", "0.01"),
        ("adam_beta1", "0.8", "0.8"),
        ("adam_beta2", "0.99", "0.99"),
        ("adam_epsilon", "1e-6", "1e-6"),
        ("max_grad_norm", "0.5", "0.5"),
        ("per_device_train_batch_size", "4", "4"),
        ("per_device_eval_batch_size", "2", "2"),
        ("gradient_accumulation_steps", "4", "4"),
        ("num_train_epochs", "1", "1"),
        ("max_steps", "100", "100"),
        ("max_length", "512", "512"),
        ("max_prompt_length", "256", "256"),
        ("seed", "7", "7"),
        ("shuffle", "false", "false"),
        ("logging_steps", "1", "1"),
        ("eval_steps", "50", "50"),
        ("save_steps", "100", "100"),
        ("save_total_limit", "2", "2"),
        ("resume_from_checkpoint", "auto", "auto"),
        ("overwrite_output_dir", "true", "true"),
        ("precompute_ref_log_probs", "true", "true"),
        ("share_prompt", "false", "false"),
        ("save_dtype", "bfloat16", "bfloat16"),
        ("max_new_tokens", "32", "32"),
        ("skip_invalid_rows", "true", "true"),
        ("bf16", "true", "true"),
        ("gradient_checkpointing", "true", "true"),
        ("use_peft", "true", "true"),
        ("lora_r", "8", "8"),
        ("lora_alpha", "16", "16"),
        ("lora_dropout", "0.1", "0.1"),  // read, then refused by validate (only 0 trains)
        ("lora_target_modules", "[q_proj, v_proj]", "q_proj,v_proj"),
        ("use_rslora", "true", "true"),
        ("completion_only_loss", "false", "false"),
    ]

    func testKeysAreTRLsNamesOnePerField() {
        XCTAssertEqual(Args.keys, Self.samples.map(\.key))
        XCTAssertEqual(Set(Args.keys).count, Args.keys.count)
    }

    func testEveryKeyIsSettableInTheFileAndByFlag() throws {
        for sample in Self.samples {
            let fromFile = try Args.load(yamlFile: writeYAML("\(sample.key): \(sample.yaml)\n"), overrides: [])
            let fromFlag = try Args.load(yamlFile: nil, overrides: [(sample.key, sample.flag)])
            XCTAssertNotEqual(fromFile, Args(), "\(sample.key) in a file changed nothing")
            XCTAssertEqual(fromFile, fromFlag, "\(sample.key): the file and the flag disagree")
        }
        // All at once, in one file.
        let all = Self.samples.map { "\($0.key): \($0.yaml)" }.joined(separator: "\n")
        let args = try Args.load(yamlFile: writeYAML(all), overrides: [])
        XCTAssertEqual(args.lossType, ["sigmoid", "sft"])
        XCTAssertEqual(args.lossWeights, [1.0, 0.5])
        XCTAssertEqual(args.seed, 7)
        XCTAssertEqual(args.resumeFromCheckpoint, "auto")
        XCTAssertFalse(args.completionOnlyLoss)
    }

    func testSpellingsOfNullListsAndAliases() throws {
        var args = Args()
        for null in ["null", "None", "none", "~", ""] {
            args.maxLength = 8
            try args.set("max_length", null, source: Args.commandLine)
            XCTAssertNil(args.maxLength, "\"\(null)\" should unset max_length")
        }
        try args.set("eval_steps", NSNull(), source: "f.yaml:1")
        XCTAssertNil(args.evalSteps)
        try args.set("loss_type", "hinge", source: "f.yaml:1")
        XCTAssertEqual(args.lossType, ["hinge"], "one name is a list of one")
        try args.set("loss_type", " sigmoid , ipo ", source: Args.commandLine)
        XCTAssertEqual(args.lossType, ["sigmoid", "ipo"])
        try args.set("loss_weights", [1, 0.5] as [Any], source: "f.yaml:1")
        XCTAssertEqual(args.lossWeights, [1, 0.5], "YAML integers are numbers too")
        try args.set("per_device_train_batch_size", 4.0, source: "f.yaml:1")
        XCTAssertEqual(args.perDeviceTrainBatchSize, 4, "a whole float is a whole number")
        try args.set("max_steps", "1e3", source: Args.commandLine)
        XCTAssertEqual(args.maxSteps, 1000)
        try args.set("max_steps", "-1", source: Args.commandLine)
        XCTAssertEqual(args.maxSteps, -1)
        for (text, value) in [("yes", true), ("False", false), ("1", true), ("off", false)] {
            try args.set("shuffle", text, source: Args.commandLine)
            XCTAssertEqual(args.shuffle, value, text)
        }
        for (alias, name) in [("fp32", "float32"), ("bf16", "bfloat16"), ("BF16", "bfloat16"), ("float32", "float32")] {
            try args.set("save_dtype", alias, source: Args.commandLine)
            XCTAssertEqual(args.saveDtype, name)
        }
        // transformers 5's name for gradient_checkpointing sets it, in a file as TRL's name does.
        for value in [true, false] {
            let path = try writeYAML("activation_checkpointing: \(value)\n")
            XCTAssertEqual(try Args.load(yamlFile: path, overrides: []),
                           try Args.load(yamlFile: writeYAML("gradient_checkpointing: \(value)\n"), overrides: []))
            XCTAssertEqual(try Args.load(yamlFile: path, overrides: []).gradientCheckpointing, value)
        }
        XCTAssertEqual(message { _ = try Args.load(yamlFile: writeYAML("activation_checkpointing: maybe\n"), overrides: []) }.contains("activation_checkpointing"), true)
        // A quoted YAML number stays text: for a path that is what the user meant.
        let path = try writeYAML("model: \"2024\"\nref_model: ~\n")
        XCTAssertEqual(try Args.load(yamlFile: path, overrides: []).model, "2024")
    }

    func testValuesOfTheWrongTypeNameTheSourceAndKey() throws {
        var args = Args()
        XCTAssertEqual(message { try args.set("beta", "abc", source: Args.commandLine) },
                       "command line: --beta must be a number, got \"abc\"")
        XCTAssertEqual(message { try args.set("per_device_train_batch_size", "2.5", source: Args.commandLine) },
                       "command line: --per-device-train-batch-size must be a whole number, got \"2.5\"")
        XCTAssertEqual(message { try args.set("shuffle", "maybe", source: Args.commandLine) },
                       "command line: --shuffle must be true or false, got \"maybe\"")
        XCTAssertEqual(message { try args.set("beta", "inf", source: Args.commandLine) },
                       "command line: --beta must be a finite number, got \"inf\"")
        XCTAssertEqual(message { try args.set("loss_weights", "1,x", source: Args.commandLine) },
                       "command line: --loss-weights must be a list of numbers, got \"1,x\"")
        XCTAssertEqual(message { try args.set("seed", "-3", source: Args.commandLine) },
                       "command line: --seed must be a whole number of at least 0, got \"-3\"")

        let path = try writeYAML("model: m\nbeta: abc\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: path, overrides: []) }, "\(path):2: beta must be a number, got \"abc\"")
        let list = try writeYAML("beta: [0.1, 0.2]\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: list, overrides: []) }, "\(list):1: beta must be a number, got a list")
        let number = try writeYAML("model: 123\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: number, overrides: []) },
                       "\(number):1: model must be text, got 123 (put it in quotes)")
        let empty = try writeYAML("loss_type:\n")
        XCTAssertTrue(message { _ = try Args.load(yamlFile: empty, overrides: []) }.hasPrefix("\(empty):1: loss_type must be"))
    }

    // MARK: Bad files

    func testUnknownKeySuggestsTheNearestKey() throws {
        let path = try writeYAML("beta: 0.1\nlearning_rte: 5e-7\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: path, overrides: []) },
                       "\(path):2: unknown key \"learning_rte\" (did you mean \"learning_rate\"?)")
        let trl = try writeYAML("model_name_or_path: HuggingFaceTB/SmolLM2-135M\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: trl, overrides: []) },
                       "\(trl):1: unknown key \"model_name_or_path\" (dpo-dist calls it \"model\")")
        let kebab = try writeYAML("max-grad-norm: 1\n")
        XCTAssertTrue(message { _ = try Args.load(yamlFile: kebab, overrides: []) }.hasSuffix("(did you mean \"max_grad_norm\"?)"))
        let far = try writeYAML("frobnicate: 1\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: far, overrides: []) }, "\(far):1: unknown key \"frobnicate\"")
        var args = Args()
        XCTAssertEqual(message { try args.set("betta", "1", source: Args.commandLine) },
                       "command line: unknown option --betta (did you mean --beta?)")
    }

    func testYAMLSyntaxErrorNamesFileAndLine() throws {
        let path = try writeYAML("beta: 0.1\nloss_type: [sigmoid, hinge\nseed: 3\n")
        let text = message { _ = try Args.load(yamlFile: path, overrides: []) }
        XCTAssertTrue(text.hasPrefix("\(path):3:"), text)
        XCTAssertTrue(text.contains("not valid YAML"), text)
        XCTAssertFalse(text.contains("\n"), "one line: \(text)")
        let tab = try writeYAML("beta: 0.1\n\tseed: 3\n")
        XCTAssertTrue(message { _ = try Args.load(yamlFile: tab, overrides: []) }.hasPrefix("\(tab):2:"))
    }

    func testFilesThatAreNotAMappingOrRepeatAKeyAreRefused() throws {
        let list = try writeYAML("- beta: 0.1\n- seed: 3\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: list, overrides: []) },
                       "\(list): expected \"key: value\" lines (a YAML mapping), got a list")
        let scalar = try writeYAML("just some text\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: scalar, overrides: []) },
                       "\(scalar): expected \"key: value\" lines (a YAML mapping), got a single value")
        let repeated = try writeYAML("beta: 0.1\nseed: 3\nbeta: 0.5\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: repeated, overrides: []) },
                       "\(repeated):3: duplicate key \"beta\" (first set on line 1)")
        let aliased = try writeYAML("gradient_checkpointing: true\nactivation_checkpointing: false\n")
        XCTAssertEqual(message { _ = try Args.load(yamlFile: aliased, overrides: []) },
                       "\(aliased):2: activation_checkpointing disagrees with gradient_checkpointing on line 1, which sets the same option; keep one of them")
        let agreeing = try writeYAML("activation_checkpointing: true\ngradient_checkpointing: true\n")
        XCTAssertTrue(try Args.load(yamlFile: agreeing, overrides: []).gradientCheckpointing, "a key and its alias that agree, as TRL saves them")
        let missing = Fixtures.temporaryDirectory() + "/nope.yaml"
        XCTAssertEqual(message { _ = try Args.load(yamlFile: missing, overrides: []) }, "\(missing): no such file")
    }

    // MARK: TRL files paste

    /// A file's arguments and the notes its TRL-only keys gave.
    func loadNoting(_ path: String) throws -> (args: Args, notes: [String]) {
        var notes: [String] = []
        let args = try Args.load(yamlFile: path, overrides: [], note: { notes.append($0) })
        return (args, notes)
    }

    /// Keys of a TRL config that change nothing here: each gives one note naming the file, line and
    /// key, and the arguments come out byte for byte as the same file without them, or as the flags.
    func testHarmlessTRLKeysAreNotedAndChangeNothing() throws {
        let real = "model: models/sft\ntrain_file: pairs.jsonl\noutput_dir: runs/dpo\nbeta: 0.2\nbf16: true\n"
        let trl = [
            "fp16: false", "report_to: none", "logging_first_step: true", "run_name: smol-dpo", "padding_free: true",
            "dataloader_num_workers: 4", "push_to_hub: false", "remove_unused_columns: false",
            "gradient_checkpointing_kwargs: null", "optim: adamw_torch", "lr_scheduler_kwargs: {}", "eval_strategy: steps",
            "truncation_mode: keep_start", "disable_dropout: true", "hub_model_id: me/smol-dpo", "tf32: null",
        ]
        let path = try writeYAML(real + trl.joined(separator: "\n") + "\n")
        let (args, notes) = try loadNoting(path)
        XCTAssertEqual(notes.count, trl.count, notes.joined(separator: "\n"))
        for (i, (line, note)) in zip(trl, notes).enumerated() {
            XCTAssertTrue(note.hasPrefix("\(path):\(6 + i): \(line) changes nothing in dpo-dist ("), note)
            XCTAssertFalse(note.contains("\n"), note)
        }
        let without = try Args.load(yamlFile: writeYAML(real), overrides: [])
        let flags = try Args.load(yamlFile: nil, overrides: [("model", "models/sft"), ("train_file", "pairs.jsonl"),
                                                             ("output_dir", "runs/dpo"), ("beta", "0.2"), ("bf16", "true")])
        XCTAssertEqual(args.yaml, without.yaml)
        XCTAssertEqual(args.yaml, flags.yaml)
        XCTAssertTrue(args.bf16, "bf16 is a real option, from the file as from --bf16")
        // report_to as TRL also writes it: an empty list, or a list of "none".
        for value in ["[]", "[none]", "null"] {
            XCTAssertEqual(try loadNoting(writeYAML("report_to: \(value)\n")).notes.count, 1, value)
        }
    }

    /// A TRL key accepted for one value is refused for another, naming the file, line and key and
    /// saying what to use instead: (key, a value that changes nothing, one that would change the run,
    /// what the refusal must mention).
    static let trlValues: [(key: String, harmless: String, refused: String, instead: String)] = [
        ("fp16", "false", "true", "use bf16: true"),
        ("report_to", "none", "wandb", "output_dir/metrics.jsonl"),
        ("report_to", "[]", "[tensorboard, none]", "set report_to: none"),
        ("push_to_hub", "false", "true", "hf upload"),
        ("tf32", "false", "true", "bf16: true"),
        ("truncation_mode", "keep_start", "keep_end", "max_prompt_length"),
        ("train_sampling_strategy", "random", "sequential", "shuffle: false"),
        ("optim", "adamw_torch_fused", "sgd", "AdamW"),
        ("lr_scheduler_kwargs", "null", "{min_lr: 1.0e-7}", "remove lr_scheduler_kwargs"),
        ("disable_dropout", "true", "false", "no dropout"),
        ("load_best_model_at_end", "false", "true", "checkpoint-STEP"),
        ("label_smoothing_factor", "0.0", "0.1", "label_smoothing"),
        ("use_dora", "false", "true", "DoRA is not implemented"),
        ("lora_task_type", "CAUSAL_LM", "SEQ_CLS", "causal language models only"),
        ("lora_modules_to_save", "[]", "[lm_head]", "remove lora_modules_to_save"),
        ("lora_target_parameters", "null", "[mlp.experts.gate_up_proj]", "use lora_target_modules"),
        ("eval_strategy", "steps", "epoch", "eval_steps"),
        ("save_strategy", "no", "epoch", "save_steps"),
        ("sync_ref_model", "false", "true", "not implemented"),
        ("use_liger_kernel", "false", "true", "set it to false"),
        ("dataloader_drop_last", "false", "true", "last short batch"),
        ("average_tokens_across_devices", "true", "false", "whole global batch"),
        ("packing", "false", "true", "not implemented"),
        ("data_seed", "null", "3", "seed"),
    ]

    func testTRLKeysThatWouldChangeTheRunAreRefusedWithWhatToUse() throws {
        for c in Self.trlValues {
            let ok = try writeYAML("beta: 0.2\n\(c.key): \(c.harmless)\n")
            let (args, notes) = try loadNoting(ok)
            XCTAssertEqual(notes.count, 1, "\(c.key): \(c.harmless)")
            XCTAssertEqual(args.yaml, try Args.load(yamlFile: writeYAML("beta: 0.2\n"), overrides: []).yaml, c.key)

            let bad = try writeYAML("beta: 0.2\n\(c.key): \(c.refused)\n")
            let text = message { _ = try loadNoting(bad) }
            XCTAssertTrue(text.hasPrefix("\(bad):2: \(c.key): "), text)
            XCTAssertTrue(text.contains("is not available in dpo-dist"), text)
            XCTAssertTrue(text.contains(c.instead), "\"\(text)\" should say \"\(c.instead)\"")
            XCTAssertFalse(text.contains("\n"), text)
        }
        let typo = try writeYAML("fp16: maybe\n")
        XCTAssertEqual(message { _ = try loadNoting(typo) }, "\(typo):1: fp16 must be true or false, got \"maybe\"")
    }

    /// The DPOConfig fields TRL 1.16 ran the parity fixtures with (tools/make_trl_fixtures.py recorded
    /// them in each case's config.json), pasted as YAML: every key is either one of dpo-dist's, set to
    /// TRL's value, or a TRL key noted as changing nothing; the one that would change the run is TRL's
    /// sequential order, refused with what to write instead (shuffle: false, what the parity tests use).
    func testTheParityFixturesTRLConfigsPaste() throws {
        let cases = try FileManager.default.contentsOfDirectory(atPath: Fixtures.root + "/trl").filter { $0.hasSuffix(".config.json") }
        XCTAssertGreaterThan(cases.count, 0)
        for name in cases.sorted() {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.root + "/trl/" + name))) as! [String: Any]
            guard json["dpo_config_set"] != nil else { continue }  // the SFT case records an SFTConfig
            var config = json["trl_defaults_that_matter"] as? [String: Any] ?? [:]
            config.merge(json["dpo_config_set"] as? [String: Any] ?? [:]) { $1 }
            config["warmup_ratio"] = nil  // "absent": transformers 5.24 has no such field
            func yaml(_ entries: [String: Any]) throws -> String {
                try entries.sorted { $0.key < $1.key }.map { key, value in
                    "\(key): " + String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]), as: UTF8.self)
                }.joined(separator: "\n") + "\n"
            }
            let pasted = try writeYAML(try yaml(config))
            XCTAssertTrue(message { _ = try loadNoting(pasted) }.contains("train_sampling_strategy: sequential is not available in dpo-dist: use shuffle: false"), name)

            XCTAssertEqual(config.removeValue(forKey: "train_sampling_strategy") as? String, "sequential")
            config["shuffle"] = false
            let (args, notes) = try loadNoting(writeYAML(try yaml(config)))
            let trlOnly = config.keys.filter { !Args.keys.contains($0) && Args.keyAliases[$0] == nil }
            XCTAssertEqual(notes.count, trlOnly.count, "\(name): \(notes)")
            XCTAssertGreaterThan(trlOnly.count, 10, name)
            for key in ["learning_rate", "beta", "label_smoothing", "weight_decay", "max_grad_norm", "adam_epsilon",
                        "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "max_length", "warmup_steps"] {
                XCTAssertEqual(args.yamlValue(of: key).flatMap(Double.init), (config[key] as? NSNumber)?.doubleValue, "\(name): \(key)")
            }
            XCTAssertEqual(args.lossType, config["loss_type"] as? [String], name)
            XCTAssertEqual(args.bf16, config["bf16"] as? Bool, name)
            XCTAssertEqual(args.gradientCheckpointing, config["gradient_checkpointing"] as? Bool, name)
            XCTAssertFalse(args.shuffle)
        }
    }

    // MARK: Validation

    /// The arguments from `required` plus `overrides`, as flags would give them.
    func arguments(_ overrides: [(String, String)], command: Args.Command = .dpo) throws -> Args {
        try Args.load(yamlFile: nil, overrides: Self.required + overrides.map { (key: $0.0, value: $0.1) }, command: command)
    }

    func assertRefused(_ overrides: [(String, String)], naming key: String, command: Args.Command = .dpo,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let args = try arguments(overrides, command: command)
        let text = message({ try args.validate(for: command) }, file: file, line: line)
        XCTAssertTrue(text.hasPrefix(key), "\"\(text)\" should begin with \(key)", file: file, line: line)
    }

    func assertAccepted(_ overrides: [(String, String)], command: Args.Command = .dpo,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertNoThrow(try arguments(overrides, command: command).validate(for: command), file: file, line: line)
    }

    func testDefaultsWithTheRequiredKeysAreValid() throws {
        try assertAccepted([])
        try assertAccepted([], command: .sft)
    }

    func testEachImpossibleValueIsRefusedByItsKey() throws {
        let cases: [(overrides: [(String, String)], key: String)] = [
            ([("beta", "0")], "beta"),
            ([("beta", "-0.1")], "beta"),
            ([("label_smoothing", "0.5")], "label_smoothing"),
            ([("label_smoothing", "-0.1")], "label_smoothing"),
            ([("loss_type", "exo_pair")], "label_smoothing"),
            ([("loss_type", "sigmod")], "loss_type"),
            ([("loss_type", "sigmoid,sigmoid")], "loss_type"),
            ([("loss_type", "sigmoid,simpo")], "loss_type"),
            ([("loss_type", "orpo,hinge")], "loss_type"),
            ([("loss_type", "simpo"), ("ref_model", "models/ref")], "ref_model"),
            ([("loss_type", "orpo"), ("precompute_ref_log_probs", "true")], "precompute_ref_log_probs"),
            ([("loss_type", "sigmoid,sft"), ("loss_weights", "1.0")], "loss_weights"),
            ([("loss_weights", "1,2")], "loss_weights"),
            ([("loss_weights", "-1")], "loss_weights"),
            ([("loss_type", "discopop"), ("discopop_tau", "0")], "discopop_tau"),
            ([("loss_type", "orpo"), ("orpo_alpha", "-1")], "orpo_alpha"),
            ([("per_device_train_batch_size", "0")], "per_device_train_batch_size"),
            ([("per_device_eval_batch_size", "0")], "per_device_eval_batch_size"),
            ([("gradient_accumulation_steps", "0")], "gradient_accumulation_steps"),
            ([("logging_steps", "0")], "logging_steps"),
            ([("eval_steps", "0"), ("eval_file", "eval.jsonl")], "eval_steps"),
            ([("eval_steps", "10")], "eval_steps"),  // no eval_file to evaluate on
            ([("save_steps", "0")], "save_steps"),
            ([("save_total_limit", "0")], "save_total_limit"),
            ([("learning_rate", "-1e-6")], "learning_rate"),
            ([("warmup_ratio", "1.5")], "warmup_ratio"),
            ([("warmup_ratio", "-0.1")], "warmup_ratio"),
            ([("warmup_steps", "-1")], "warmup_steps"),
            ([("weight_decay", "-0.01")], "weight_decay"),
            ([("adam_beta1", "1")], "adam_beta1"),
            ([("adam_beta1", "-0.1")], "adam_beta1"),
            ([("adam_beta2", "1.0")], "adam_beta2"),
            ([("adam_epsilon", "0")], "adam_epsilon"),
            ([("max_grad_norm", "-1")], "max_grad_norm"),
            ([("max_length", "1")], "max_length"),
            ([("max_prompt_length", "0")], "max_prompt_length"),
            ([("max_prompt_length", "1024"), ("max_length", "1024")], "max_prompt_length"),
            ([("num_train_epochs", "0")], "num_train_epochs"),
            ([("num_train_epochs", "-1"), ("max_steps", "0")], "num_train_epochs"),
            ([("lr_scheduler_type", "cosine_with_restarts")], "lr_scheduler_type"),
            ([("save_dtype", "fp16")], "save_dtype"),
            ([("max_new_tokens", "-1")], "max_new_tokens"),
            ([("model", "")], "model"),
            ([("train_file", "")], "train_file"),
            ([("output_dir", "")], "output_dir"),
            ([("lora_r", "0")], "lora_r"),
            ([("lora_alpha", "0")], "lora_alpha"),
            ([("lora_dropout", "0.05")], "lora_dropout"),
            ([("lora_target_modules", "all-linear,q_proj")], "lora_target_modules"),
        ]
        for c in cases { try assertRefused(c.overrides, naming: c.key) }
    }

    func testLimitsThatAreJustInside() throws {
        try assertAccepted([("label_smoothing", "0.49"), ("loss_type", "robust")])
        try assertAccepted([("label_smoothing", "0.1"), ("loss_type", "exo_pair")])
        try assertAccepted([("warmup_ratio", "1"), ("adam_beta1", "0"), ("max_grad_norm", "0"), ("learning_rate", "0")])
        try assertAccepted([("max_length", "2"), ("max_prompt_length", "1")])
        try assertAccepted([("max_length", "null"), ("max_prompt_length", "4096")])
        try assertAccepted([("num_train_epochs", "0"), ("max_steps", "10")])
        try assertAccepted([("eval_steps", "10"), ("eval_file", "eval.jsonl"), ("save_steps", "1"), ("save_total_limit", "1")])
        try assertAccepted([("loss_type", "sigmoid,sft"), ("loss_weights", "1.0,0.5")])
        try assertAccepted([("save_dtype", "bf16")])
        try assertAccepted([("lr_scheduler_type", "constant_with_warmup")])
    }

    func testReferenceFreeLossesCombineOnlyWithEachOtherAndSFT() throws {
        try assertAccepted([("loss_type", "simpo")])
        try assertAccepted([("loss_type", "orpo")])
        try assertAccepted([("loss_type", "simpo,sft")])
        try assertAccepted([("loss_type", "simpo,orpo,sft")])
        try assertAccepted([("loss_type", "sigmoid,sft"), ("ref_model", "models/ref"), ("precompute_ref_log_probs", "true")])
        XCTAssertFalse(try arguments([("loss_type", "simpo,sft")]).usesReferenceModel)
        XCTAssertTrue(try arguments([("loss_type", "sigmoid,sft")]).usesReferenceModel)
        for other in PreferenceLossType.allCases where other.usesReference {
            try assertRefused([("loss_type", "simpo,\(other.rawValue)")], naming: "loss_type")
        }
    }

    func testSFTChecksOnlyWhatSFTUses() throws {
        // DPO-only keys have no effect on sft, so their values are not checked.
        try assertAccepted([("beta", "-1"), ("loss_type", "bogus"), ("label_smoothing", "0.9"),
                            ("max_prompt_length", "4096"), ("loss_weights", "1,2,3")], command: .sft)
        try assertRefused([("learning_rate", "-1")], naming: "learning_rate", command: .sft)
        try assertRefused([("max_length", "1")], naming: "max_length", command: .sft)
        try assertRefused([("per_device_train_batch_size", "0")], naming: "per_device_train_batch_size", command: .sft)
        try assertRefused([("output_dir", "")], naming: "output_dir", command: .sft)
    }

    // MARK: Writing back

    func testYAMLListsEveryKeyInOrderAndReadsBack() throws {
        var changed = Args()
        for sample in Self.samples { try changed.set(sample.key, sample.flag, source: Args.commandLine) }
        changed.model = "models/with \"quotes\": and # hash\\ and ünïcode"
        changed.outputDir = "yes"  // would be a bool unquoted
        changed.trainFile = "123"  // would be a number unquoted
        changed.evalFile = "true"  // would be a bool unquoted
        changed.learningRate = 5e-7
        changed.numTrainEpochs = 1e-300
        changed.seed = UInt64.max

        for args in [Args(), Args.defaults(for: .sft), changed] {
            let text = args.yaml
            let keys = text.split(separator: "\n").map { String($0.prefix { $0 != ":" }) }
            XCTAssertEqual(keys, Args.keys)
            let back = try Args.load(yamlFile: writeYAML(text, name: "training_args.yaml"), overrides: [])
            XCTAssertEqual(back, args, text)
            XCTAssertEqual(back.yaml, text)
        }
    }

    func testYAMLNumbersArePyYAMLFloats() {
        // YAML 1.1 (PyYAML) reads "5e-07" as a string; "5.0e-07" is a float.
        XCTAssertEqual(Args.yamlNumber(5e-7), "5.0e-07")
        XCTAssertEqual(Args.yamlNumber(1e-8), "1.0e-08")
        XCTAssertEqual(Args.yamlNumber(0.1), "0.1")
        XCTAssertEqual(Args.yamlNumber(3), "3.0")
        XCTAssertEqual(Args.yamlNumber(1.5e-7), "1.5e-07")
        XCTAssertTrue(Args().yaml.contains("learning_rate: 1.0e-06\n"))
        XCTAssertTrue(Args().yaml.contains("loss_type: [\"sigmoid\"]\n"))
        XCTAssertTrue(Args().yaml.contains("ref_model: null\n"))
    }
}
