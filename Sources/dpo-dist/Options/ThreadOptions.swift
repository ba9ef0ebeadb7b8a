import ArgumentParser
import DPOKernels
import Foundation

struct ThreadOptions: ParsableArguments {
    @Option(help: "OpenBLAS threads for matrix products (default: OPENBLAS_NUM_THREADS, else all cores).")
    var threads: Int?

    func apply() {
        setBLASThreads(max(1, effective))
    }

    var effective: Int {
        if let threads { return threads }
        if let env = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"], let n = Int(env) { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }
}
