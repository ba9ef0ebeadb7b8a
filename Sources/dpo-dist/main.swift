import ArgumentParser
import DPOKernels
import DPOSupport
import Foundation

struct DPODist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo-dist",
        abstract: "Data-parallel DPO training of Llama-family models on CPUs (OpenBLAS + MPI).",
        version: "dpo-dist \(dpoDistVersion)",
        subcommands: [InitCommand.self, SFTCommand.self, TrainCommand.self, EvalCommand.self, ReportCommand.self, GenerateCommand.self, Score.self, MergeCommand.self, InspectCommand.self, Bench.self, BenchKernels.self, BenchComm.self])
}

Console.ignoreBrokenPipes()
BLASCore.restartWithFasterKernelsIfNeeded()
DPODist.main()
