import ArgumentParser
import DPOTraining

struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning (TRL SFTTrainer semantics): makes the reference DPO starts from.",
        discussion: """
        Data: {"prompt","completion"} (loss on completion tokens by default), {"text"} or {"messages"} rows. \
        Same options, checkpoints and logs as `train`.
        """)
    @OptionGroup var options: TrainOptions
    @OptionGroup var runOptions: RunOptions
    func run() throws { try runTraining(options, runOptions, command: .sft, make: { try Trainer.sft(args: $0, comm: $1, parallel: $2) }) }
}
