import Foundation
import XCTest

/// A finished child process.
public struct ProcessResult {
    public let status: Int32
    public let reason: Process.TerminationReason
    public let stdout: String
    public let stderr: String
    public let seconds: Double
    /// stdout then stderr, for checks that do not care which stream a line went to.
    public var output: String { stdout + stderr }
}

/// Runs the programs the end-to-end tests need: the built `dpo-dist`, mpirun, ip.
public enum ProcessRunner {
    /// The `dpo-dist` executable in the build products folder beside the test bundle (on Linux the
    /// folder Bundle reports, on macOS the folder holding the .xctest).
    public static var dpoDist: String {
        let bundle = Bundle(for: BundleAnchor.self).bundleURL
        let products = bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        return products.appendingPathComponent("dpo-dist").path
    }

    /// The environment of every child: Open MPI allowed as root (CI runs as root) and oversubscribed
    /// (CI has 2 cores), one OpenBLAS thread per process.
    public static var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OPENBLAS_NUM_THREADS"] = "1"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        return env
    }

    public static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `dpo-dist` with these arguments, failing the test (not crashing the suite) when it is not built.
    public static func dpoDist(_ arguments: [String], timeout: Double = 120) throws -> ProcessResult {
        guard FileManager.default.isExecutableFile(atPath: dpoDist) else {
            throw TestSetupError("dpo-dist is not built at \(dpoDist): build all products first (`swift build --build-tests`)")
        }
        return try run(dpoDist, arguments, timeout: timeout)
    }

    /// Runs a program to completion, both streams captured. A job still running after `timeout`
    /// seconds (a hung collective, say) is terminated, so the test fails instead of stalling the suite.
    /// `directory` is its working directory (default: the test's); `extraEnvironment` is added to `environment`.
    public static func run(_ executable: String, _ arguments: [String], timeout: Double = 120, in directory: String? = nil,
                           extraEnvironment: [String: String] = [:]) throws -> ProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = environment.merging(extraEnvironment) { $1 }
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let start = Date()
        try p.run()
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        // Both pipes drained at once: a child that fills one while we wait on the other would block.
        let stderrData = ReadInBackground(err.fileHandleForReading)
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        return ProcessResult(status: p.terminationStatus, reason: p.terminationReason,
                             stdout: String(decoding: stdoutData, as: UTF8.self),
                             stderr: String(decoding: stderrData.wait(), as: UTF8.self),
                             seconds: Date().timeIntervalSince(start))
    }

    /// Processes whose parent is `pid`, from /proc (no procps needed).
    public static func childProcesses(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            // After "pid (name)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid
        }.sorted()
    }
}

/// Something the tests need is missing (not a failure of the code under test).
public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

private final class BundleAnchor {}

/// A file handle read to its end on another thread.
private final class ReadInBackground: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        DispatchQueue.global().async {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
