import ArgumentParser
import DPOCore
import Foundation

/// Runs a command body; a DPOError becomes one line on stderr and exit code 1, never a crash trace.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as DPOError {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode.failure
    }
}

/// Messages for people go to stderr, so stdout stays clean for data.
func note(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

struct ThreadOptions: ParsableArguments {
    @Option(help: "OpenBLAS threads for matrix products (default: OPENBLAS_NUM_THREADS, else all cores).")
    var threads: Int?

    func apply() {
        if let threads { setBLASThreads(max(1, threads)) }
    }

    var effective: Int {
        if let threads { return threads }
        if let env = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"], let n = Int(env) { return n }
        return ProcessInfo.processInfo.activeProcessorCount
    }
}
