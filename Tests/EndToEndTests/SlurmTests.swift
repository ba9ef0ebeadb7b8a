import DPOTestSupport
import Foundation
import XCTest
@testable import DPOModel

/// `sbatch launch/slurm.sbatch` on a one-node Slurm that `launch/slurm-local` starts for this class
/// (and stops at its end): 2 tasks give `mpirun -np 2`'s numbers bit for bit, and a signal sent
/// through Slurm (scancel, or the time limit's `--signal=B:USR1@N`) ends the run with a checkpoint
/// from which the requeued or resubmitted job finishes exactly as a run never interrupted. Skipped,
/// with the reason, where the daemons cannot start (not root, Slurm's packages not installed).
final class SlurmTests: XCTestCase {
    /// A fixed directory: `launch/slurm-local start` stops daemons that a crashed run left there.
    static let clusterDirectory = NSTemporaryDirectory() + "dpo-dist-slurm-tests"
    static let localSlurm = Fixtures.repositoryRoot + "/launch/slurm-local"
    static let batchScript = Fixtures.repositoryRoot + "/launch/slurm.sbatch"
    static let steps = 30
    static var slurmConf: String?
    static var unavailable = "launch/slurm-local start did not run"
    static var started = Date()
    /// The uninterrupted run every job here is compared with: `mpirun -np 2`, made once.
    static var mpirunReference: String?

    override class func setUp() {
        super.setUp()
        started = Date()
        do {
            // No network in the tests: launch/test installs Slurm beforehand (launch/slurm-local install).
            let r = try ProcessRunner.run(localSlurm, ["start", clusterDirectory], timeout: 120,
                                          extraEnvironment: ["SLURM_LOCAL_NO_INSTALL": "1"])
            if r.status == 0 {
                slurmConf = clusterDirectory + "/slurm.conf"
            } else {
                unavailable = r.stderr.split(separator: "\n").last.map(String.init) ?? "launch/slurm-local start exited \(r.status)"
            }
        } catch {
            unavailable = "launch/slurm-local: \(error)"
        }
        print("one-node Slurm: \(slurmConf != nil ? "started" : "not started (\(unavailable))") in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }

    override class func tearDown() {
        do {
            let r = try ProcessRunner.run(localSlurm, ["stop", clusterDirectory], timeout: 120)
            if r.status != 0 { print("launch/slurm-local stop exited \(r.status): \(r.output)") }
        } catch {
            print("launch/slurm-local stop could not run: \(error)")
        }
        print("SlurmTests: \(String(format: "%.1f", Date().timeIntervalSince(started))) s, daemons started and stopped included")
        super.tearDown()
    }

    override func setUpWithError() throws {
        guard Self.slurmConf != nil else { throw XCTSkip("no one-node Slurm here: \(Self.unavailable)") }
    }

    /// A failed test may leave a job running or requeued: none outlives its test.
    override func tearDownWithError() throws {
        guard Self.slurmConf != nil else { return }
        for arguments in [["--signal=KILL", "--user=\(NSUserName())"], ["--user=\(NSUserName())"]] {
            let r = try slurm("scancel", arguments)
            XCTAssertEqual(r.status, 0, "scancel \(arguments.joined(separator: " ")): \(r.output)")
        }
    }

    // MARK: Running jobs

    func slurm(_ command: String, _ arguments: [String], timeout: Double = 60, environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run("/usr/bin/" + command, arguments, timeout: timeout,
                              extraEnvironment: ["SLURM_CONF": Self.slurmConf ?? "", "DPO_DIST_BIN": ProcessRunner.dpoDist]
                                .merging(environment) { $1 })
    }

    /// The tiny run every job trains: a constant learning rate, so a run stopped at step k and one
    /// that ends at step k agree on every step up to k whatever their max_steps.
    func config(_ output: String, steps: Int = steps, at path: String? = nil) throws -> String {
        var a = TrainingRuns.arguments("slurm", model: "llama-tied", steps: steps)
        a.outputDir = output
        a.seed = 3
        a.lrSchedulerType = "constant"
        guard let path else { return try TrainingRuns.configFile(a) }
        try a.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `sbatch launch/slurm.sbatch train --config CONFIG` on 2 tasks of 1 CPU; the job id.
    func submit(_ config: String, log: String, options: [String] = [], environment: [String: String] = [:]) throws -> String {
        let r = try slurm("sbatch", ["--parsable", "--nodes=1", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1",
                                     "--output=\(log)"] + options + [Self.batchScript, "train", "--config", config],
                          environment: environment)
        XCTAssertEqual(r.status, 0, r.output)
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else { throw TestSetupError("sbatch gave no job id: \(r.output)") }
        return id
    }

    /// What `scontrol show job` says: JobState, ExitCode, Restarts, Reason.
    func job(_ id: String) throws -> [String: String] {
        let r = try slurm("scontrol", ["show", "job", "-o", id])
        guard r.status == 0 else { throw TestSetupError("scontrol show job \(id): \(r.output)") }
        var fields: [String: String] = [:]
        for key in ["JobState", "ExitCode", "Restarts", "Reason"] {
            if let range = r.stdout.range(of: "\\b\(key)=\\S+", options: .regularExpression) {
                fields[key] = String(r.stdout[range].dropFirst(key.count + 1))
            }
        }
        return fields
    }

    /// Polls the job until `done` holds; fails (with the job's log) after `timeout` seconds.
    @discardableResult
    func waitForJob(_ id: String, log: String, timeout: Double = 300, line: UInt = #line,
                    until done: ([String: String]) -> Bool) throws -> [String: String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let state = try job(id)
            if done(state) { return state }
            if Date() > deadline {
                XCTFail("job \(id) still \(state) after \(timeout) s; its log: \(read(log))", line: line)
                throw TestSetupError("job \(id) timed out")
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    func waitUntilFinished(_ id: String, log: String, line: UInt = #line) throws -> [String: String] {
        try waitForJob(id, log: log, line: line) { ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].contains($0["JobState"] ?? "") }
    }

    func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no \(path))"
    }

    func metricsLines(_ output: String) -> Int {
        read(output + "/metrics.jsonl").split(separator: "\n").count
    }

    /// Waits for `lines` metrics lines of a running job, so that a signal lands mid-run.
    func waitForSteps(_ lines: Int, of id: String, output: String, log: String, line: UInt = #line) throws {
        try waitForJob(id, log: log, timeout: 120, line: line) { state in
            XCTAssertNotEqual(state["JobState"], "COMPLETED", "the job ended before it could be signalled", line: line)
            return metricsLines(output) >= lines || state["JobState"] != "RUNNING" && state["JobState"] != "PENDING"
        }
    }

    /// The step of "interrupted by SIGX at step N" in a job's log.
    func interruptedStep(_ log: String, line: UInt = #line) throws -> Int {
        let text = read(log)
        guard let range = text.range(of: #"interrupted by SIG\w+ at step \d+"#, options: .regularExpression),
              let step = Int(text[range].split(separator: " ").last!) else {
            XCTFail("no \"interrupted by SIG... at step N\" in the job's log: \(text)", line: line)
            throw TestSetupError("no interruption")
        }
        return step
    }

    func mpirun(_ config: String) throws -> ProcessResult {
        guard let mpirun = ProcessRunner.mpirun else { throw XCTSkip("mpirun is not installed (launch/setup installs openmpi-bin)") }
        return try ProcessRunner.run(mpirun, ["-np", "2", "--oversubscribe", "--bind-to", "none", ProcessRunner.dpoDist,
                                              "train", "--config", config], timeout: 300)
    }

    func reference() throws -> String {
        if let dir = Self.mpirunReference { return dir }
        let dir = Fixtures.temporaryDirectory("slurm-mpirun")
        let r = try mpirun(try config(dir))
        XCTAssertEqual(r.status, 0, r.output)
        Self.mpirunReference = dir
        return dir
    }

    /// Every metrics line (timing aside) and the final weights of `output` equal those of `reference`.
    func assertSameRun(_ output: String, _ reference: String, _ what: String, line: UInt = #line) throws {
        XCTAssertEqual(try Metrics.read(output), try Metrics.read(reference), "\(what): metrics", line: line)
        let weights = try ModelDirectory.load(output).model.parameters.values.toArray()
        let expected = try ModelDirectory.load(reference).model.parameters.values.toArray()
        XCTAssertEqual(weights, expected, "\(what): final parameters", line: line)
    }

    /// Lets a requeued job start now instead of after Slurm's two-minute hold. Not in the same second
    /// as the requeue: slurmd refuses a credential made then ("Job credential revoked").
    func release(_ id: String, line: UInt = #line) throws {
        Thread.sleep(forTimeInterval: 2)
        let r = try slurm("scontrol", ["update", "JobId=\(id)", "StartTime=now"])
        XCTAssertEqual(r.status, 0, r.output, line: line)
    }

    // MARK: Tests

    /// Both launchers of the batch script: srun (Slurm's PMIx) and mpirun inside the allocation.
    func testTwoTasksEqualMpirunBitForBit() throws {
        let reference = try reference()
        for (launcher, line) in [("srun", "through srun --mpi=pmix"), ("mpirun", "through mpirun -np 2")] {
            let output = Fixtures.temporaryDirectory("slurm-sbatch-\(launcher)")
            let log = output + ".log"
            let id = try submit(try config(output), log: log, environment: ["DPO_DIST_LAUNCHER": launcher])
            let state = try waitUntilFinished(id, log: log)
            XCTAssertEqual(state["JobState"], "COMPLETED", read(log))
            XCTAssertEqual(state["ExitCode"], "0:0", read(log))
            XCTAssertTrue(read(log).contains("2 ranks on 1 node(s), 1 BLAS threads each, \(line)"), read(log))
            XCTAssertEqual(try Metrics.read(output).count, Self.steps)
            try assertSameRun(output, reference, "sbatch 2 tasks through \(launcher) vs mpirun -np 2")
        }
    }

    /// `scancel --signal=USR1 --full` (what the time limit's B:USR1 does, to the whole batch step):
    /// the ranks stop with a checkpoint, the job requeues itself, and its next run resumes from that
    /// checkpoint to the end, in the same log.
    func testUSR1ThroughSlurmCheckpointsAndTheRequeuedJobFinishesTheRun() throws {
        let reference = try reference()
        let output = Fixtures.temporaryDirectory("slurm-usr1")
        let log = output + ".log"
        let id = try submit(try config(output), log: log)
        try waitForSteps(5, of: id, output: output, log: log)
        let signal = try slurm("scancel", ["--signal=USR1", "--full", id])
        XCTAssertEqual(signal.status, 0, signal.output)
        // Requeued: pending again, held by its begin time (Slurm holds a requeued job for two minutes;
        // the test does not wait). Its reason can read None, or another, for a moment before that.
        try waitForJob(id, log: log, timeout: 120) {
            $0["Restarts"] == "1" && $0["JobState"] == "PENDING" && $0["Reason"] == "BeginTime"
        }
        let step = try interruptedStep(log)
        XCTAssertLessThan(step, Self.steps)
        XCTAssertTrue(read(log).contains("interrupted by SIGUSR1 at step \(step): checkpoint in \(output)/checkpoint-\(step)"), read(log))
        XCTAssertNoThrow(try ModelDirectory.load(output + "/checkpoint-\(step)"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/model.safetensors"), "a final model was written")
        try release(id)

        let state = try waitUntilFinished(id, log: log)
        XCTAssertEqual(state["JobState"], "COMPLETED", read(log))
        XCTAssertEqual(state["ExitCode"], "0:0", read(log))
        let text = read(log)
        // --open-mode=append: the first run's lines are still there above the second run's.
        for expected in ["run 1:", "interrupted by SIGUSR1 at step \(step)", "requeued to resume", "run 2:",
                         "resumed from \(output)/checkpoint-\(step) at step \(step)", "done: model in \(output)"] {
            XCTAssertTrue(text.contains(expected), "\"\(expected)\" missing from the job's log: \(text)")
        }
        try assertSameRun(output, reference, "stopped by USR1 at step \(step), requeued")
    }

    /// `scancel --signal=TERM --full`: srun would answer its own SIGTERM by killing the ranks; the
    /// batch script passes a SIGUSR1 to them instead, and the job ends with a checkpoint and exit 0,
    /// not requeued. The same sbatch command again resumes it to the end.
    func testTERMThroughSlurmEndsTheJobAndTheResubmittedJobFinishesTheRun() throws {
        let reference = try reference()
        let output = Fixtures.temporaryDirectory("slurm-term")
        let log = output + ".log"
        let configFile = try config(output)
        let id = try submit(configFile, log: log)
        try waitForSteps(5, of: id, output: output, log: log)
        let signal = try slurm("scancel", ["--signal=TERM", "--full", id])
        XCTAssertEqual(signal.status, 0, signal.output)
        let stopped = try waitUntilFinished(id, log: log)
        XCTAssertEqual(stopped["JobState"], "COMPLETED", read(log))
        XCTAssertEqual(stopped["ExitCode"], "0:0", read(log))
        XCTAssertEqual(stopped["Restarts"], "0", "a TERM does not requeue")
        XCTAssertTrue(read(log).contains("got SIGTERM"), read(log))
        let step = try interruptedStep(log)
        XCTAssertLessThan(step, Self.steps)
        XCTAssertNoThrow(try ModelDirectory.load(output + "/checkpoint-\(step)"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + "/model.safetensors"), "a final model was written")

        let again = try submit(configFile, log: log)
        let state = try waitUntilFinished(again, log: log)
        XCTAssertEqual(state["JobState"], "COMPLETED", read(log))
        XCTAssertEqual(state["ExitCode"], "0:0", read(log))
        XCTAssertTrue(read(log).contains("resumed from \(output)/checkpoint-\(step) at step \(step)"), read(log))
        try assertSameRun(output, reference, "stopped by TERM at step \(step), resubmitted")
    }

    /// A two-minute time limit with `--signal=B:USR1@80`: Slurm checks time limits every 30 s and
    /// signals at the first check past 110 s before the limit, so the batch script gets SIGUSR1 10 to
    /// 40 s after the start, well after the ranks are up; the run stops with a checkpoint and the job
    /// requeues itself. The requeued run, told by its config to end 3 steps later, ends as an
    /// uninterrupted run of that length.
    func testTimeLimitSignalRequeuesAndReachesTheSameEnd() throws {
        let output = Fixtures.temporaryDirectory("slurm-time-limit")
        let log = output + ".log"
        let configFile = try config(output, steps: 5000)
        let id = try submit(configFile, log: log, options: ["--time=2", "--signal=B:USR1@80"])
        let requeued = try waitForJob(id, log: log, timeout: 150) { state in
            XCTAssertNotEqual(state["JobState"], "TIMEOUT", "the time limit came before the signal")
            return state["Restarts"] == "1" && state["JobState"] == "PENDING" || state["JobState"] == "TIMEOUT"
        }
        XCTAssertEqual(requeued["JobState"], "PENDING", read(log))
        let step = try interruptedStep(log)
        XCTAssertTrue(read(log).contains("got SIGUSR1"), read(log))
        _ = try config(output, steps: step + 3, at: configFile)
        try release(id)
        let state = try waitUntilFinished(id, log: log)
        XCTAssertEqual(state["JobState"], "COMPLETED", read(log))
        XCTAssertEqual(state["ExitCode"], "0:0", read(log))

        let reference = Fixtures.temporaryDirectory("slurm-time-limit-mpirun")
        let r = try mpirun(try config(reference, steps: step + 3))
        XCTAssertEqual(r.status, 0, r.output)
        try assertSameRun(output, reference, "stopped by the time limit's USR1 at step \(step), requeued")
    }
}
