import ArgumentParser
import DPOModel
import DPOSupport
import DPOTraining
import Foundation

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge a LoRA adapter into its base: a whole model directory, as PEFT's merge_and_unload and save_pretrained.",
        discussion: """
        Reads ADAPTER_DIR (adapter_config.json naming its base in base_model_name_or_path, and \
        adapter_model.safetensors), adds scaling · B·A to each adapted weight of the base, and writes \
        OUTPUT_DIR/model.safetensors, config.json (the base's keys) and the tokenizer files (the adapter \
        directory's, else the base's): a directory transformers loads without PEFT.
        """)

    @Option(help: "A PEFT LoRA adapter directory (a dpo-dist train --use-peft output or checkpoint, or PEFT's save_pretrained).")
    var model: String
    @Option(help: "Where the merged model goes (not the adapter or base directory).")
    var outputDir: String
    @Option(help: "Dtype of the merged weights: float32 or bfloat16, also fp32 or bf16 (default: float32).")
    var saveDtype = "float32"

    func run() throws {
        try runReportingErrors {
            guard let dtype = SaveDType(name: saveDtype) else {
                throw DPOError("--save-dtype must be float32 or bfloat16 (or fp32, bf16), got \"\(saveDtype)\"")
            }
            guard AdapterDirectory.isAdapter(model) else {
                throw DPOError.file(model, "holds no \(AdapterDirectory.configFile): merge takes a LoRA adapter directory")
            }
            let (base, config) = try AdapterDirectory.load(model)
            try OutputFile.checkDirectory(outputDir)
            let out = Trainer.resolved(outputDir)
            for input in [model, config.baseDirectory] where Trainer.resolved(input) == out {
                throw DPOError("--output-dir \(outputDir) is \(input): the merged model would overwrite its input; choose another directory")
            }
            let adapters = base.model.adapters!
            adapters.merge(into: base.model.parameters.values)
            // The merged weights alone: a model without the adapter.
            let merged = Transformer(config: base.model.config, values: base.model.parameters.values)
            try ModelDirectory.save(merged, to: outputDir, configJSON: base.configJSON,
                                    companionsFrom: AdapterDirectory.tokenizerDirectory(model, base: config.baseDirectory),
                                    dtype: dtype.safetensors)
            note("merged \(model) (r \(adapters.settings.rank), lora_alpha \(adapters.settings.alpha) on \(adapters.targetModules.joined(separator: ", "))) into \(config.baseDirectory) → \(outputDir) (\(dtype.rawValue))")
        }
    }
}
