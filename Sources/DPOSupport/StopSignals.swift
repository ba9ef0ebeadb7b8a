import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The signals that ask a run to stop cleanly: SIGTERM (a scheduler's preemption, `kill`), SIGINT
/// (Ctrl-C) and SIGUSR1 (Slurm's `--signal=B:USR1@T` before a time limit). The first sets a flag the
/// training loop reads after each optimizer step; a second one ends the process at once.
public enum StopSignals {
    public static let handled: [Int32] = [SIGTERM, SIGINT, SIGUSR1]

    /// Installs the handlers. Call once, in the process that trains.
    public static func install() {
        for sig in handled {
            signal(sig) { received in
                if stopSignalReceived != 0 { _exit(128 + received) }
                stopSignalReceived = received
            }
        }
    }

    /// The signal that asked to stop, or nil.
    public static var requested: Int32? { stopSignalReceived == 0 ? nil : stopSignalReceived }

    /// The signal's name for messages ("SIGTERM").
    public static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(sig)"
        }
    }
}

/// Written only by the signal handler (an aligned 32-bit store) and read by the training loop.
private var stopSignalReceived: Int32 = 0
