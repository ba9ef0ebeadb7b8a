import DPOTestSupport
import Foundation
import XCTest
@testable import DPOModel
@testable import DPOSupport

/// SIGTERM (or Slurm's SIGUSR1) mid-run: the job finishes the step under way, writes a checkpoint of
/// it, says so and exits 0; `--resume-from-checkpoint auto` then ends bit-identical to a run that was
/// never interrupted.
final class StopSignalTests: XCTestCase {
    static let steps = 150

    func arguments(_ output: String) throws -> [String] {
        var a = TrainingRuns.arguments("stop", model: "llama-tied", steps: Self.steps)
        a.outputDir = output
        a.seed = 3
        return ["train", "--config", try TrainingRuns.configFile(a)]
    }

    /// Starts `command`, signals it once metrics.jsonl has 20 lines, and checks the clean stop.
    /// Returns the step it stopped at.
    func stop(_ executable: String, _ command: [String], output: String, with signal: Int32,
              file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let job = Process()
        job.executableURL = URL(fileURLWithPath: executable)
        job.arguments = command
        job.environment = ProcessRunner.environment.merging(["DPO_DIST_BIN": ProcessRunner.dpoDist]) { $1 }
        let log = Pipe()
        job.standardOutput = log
        job.standardError = log
        try job.run()
        let deadline = Date().addingTimeInterval(120)
        func logged() -> Int {
            ((try? String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        while logged() < 20 && job.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertTrue(job.isRunning, "the run ended before it could be signalled", file: file, line: line)
        let sent = Date()
        kill(job.processIdentifier, signal)
        let text = String(decoding: log.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        job.waitUntilExit()
        let seconds = Date().timeIntervalSince(sent)
        print("stopped \(seconds) s after \(StopSignals.name(signal)); exit \(job.terminationStatus)")
        XCTAssertEqual(job.terminationReason, .exit, text, file: file, line: line)
        XCTAssertEqual(job.terminationStatus, 0, text, file: file, line: line)
        XCTAssertLessThan(seconds, 30, file: file, line: line)
        guard let range = text.range(of: #"interrupted (by \w+ )?at step (\d+)"#, options: .regularExpression),
              let step = Int(text[range].split(separator: " ").last!) else {
            XCTFail("no \"interrupted at step N\" in: \(text)", file: file, line: line)
            return 0
        }
        XCTAssertLessThan(step, Self.steps, file: file, line: line)
        XCTAssertTrue(text.contains("resume with --resume-from-checkpoint auto"), text, file: file, line: line)
        XCTAssertNoThrow(try ModelDirectory.load(output + "/checkpoint-\(step)"), file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/model.safetensors"), "a final model was written",
                       file: file, line: line)
        return step
    }

    /// The interrupted run resumed to the end against the uninterrupted one: every metrics line and
    /// the final weights equal.
    func assertResumeEqualsUninterrupted(_ output: String, resume: () throws -> ProcessResult, reference: String,
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try resume()
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertEqual(try Metrics.read(output), try Metrics.read(reference), "metrics after the resume", file: file, line: line)
        let resumed = try ModelDirectory.load(output).model.parameters.values.toArray()
        let whole = try ModelDirectory.load(reference).model.parameters.values.toArray()
        XCTAssertEqual(resumed, whole, "final parameters", file: file, line: line)
    }

    func testSIGTERMToOneProcess() throws {
        let reference = Fixtures.temporaryDirectory("stop-whole")
        let whole = try ProcessRunner.dpoDist(try arguments(reference))
        XCTAssertEqual(whole.status, 0, whole.output)
        let output = Fixtures.temporaryDirectory("stop-one")
        _ = try stop(ProcessRunner.dpoDist, try arguments(output), output: output, with: SIGTERM)
        try assertResumeEqualsUninterrupted(output, resume: {
            try ProcessRunner.dpoDist(try arguments(output) + ["--resume-from-checkpoint", "auto"])
        }, reference: reference)
    }

    /// Under mpirun: SIGUSR1 to mpirun (what Slurm's --signal sends) reaches the ranks, which stop
    /// together; launch/mpi turns a SIGTERM into that.
    func testSignalsToAnMPIJob() throws {
        guard let mpirun = ProcessRunner.mpirun else { throw XCTSkip("mpirun is not installed (launch/setup installs openmpi-bin)") }
        let reference = Fixtures.temporaryDirectory("stop-mpi-whole")
        let mpi = ["-np", "2", "--oversubscribe", "--bind-to", "none", ProcessRunner.dpoDist]
        let whole = try ProcessRunner.run(mpirun, mpi + (try arguments(reference)))
        XCTAssertEqual(whole.status, 0, whole.output)

        let viaUSR1 = Fixtures.temporaryDirectory("stop-mpi-usr1")
        _ = try stop(mpirun, mpi + (try arguments(viaUSR1)), output: viaUSR1, with: SIGUSR1)
        try assertResumeEqualsUninterrupted(viaUSR1, resume: {
            try ProcessRunner.run(mpirun, mpi + (try arguments(viaUSR1)) + ["--resume-from-checkpoint", "auto"])
        }, reference: reference)

        let launcher = Fixtures.repositoryRoot + "/launch/mpi"
        let viaTERM = Fixtures.temporaryDirectory("stop-mpi-term")
        _ = try stop(launcher, ["2"] + (try arguments(viaTERM)), output: viaTERM, with: SIGTERM)
        try assertResumeEqualsUninterrupted(viaTERM, resume: {
            try ProcessRunner.run(mpirun, mpi + (try arguments(viaTERM)) + ["--resume-from-checkpoint", "auto"])
        }, reference: reference)
    }
}
