import ArgumentParser
import DPOSupport
import Foundation

/// Runs a command body; a DPOError becomes one line on stderr and exit code 1, never a crash trace.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as DPOError {
        DPOError.report(error.message)
        throw ExitCode.failure
    }
}

/// Messages for people go to stderr, so stdout stays clean for data.
func note(_ message: String) {
    Console.note(message + "\n")
}
