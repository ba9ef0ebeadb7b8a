import ArgumentParser
import DPOKernels
import DPOSupport
import Foundation

struct DPODist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo-dist",
        abstract: "Data-parallel DPO training of Llama-family models on CPUs (OpenBLAS + MPI).",
        subcommands: [InitCommand.self, SFTCommand.self, TrainCommand.self, EvalCommand.self, GenerateCommand.self, Score.self, InspectCommand.self, Bench.self, BenchKernels.self, BenchComm.self])
}

Console.ignoreBrokenPipes()
BLASCore.restartWithFasterKernelsIfNeeded()
DPODist.main()
