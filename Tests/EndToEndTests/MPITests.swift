import DPOTestSupport
import XCTest
@testable import DPOModel

/// `mpirun -np N dpo-dist train` against one process with the same global batch. Runs the built
/// executable under Open MPI (as root where CI runs, oversubscribed on 2 cores).
final class MPITests: XCTestCase {
    typealias Run = ProcessResult

    func train(ranks: Int?, _ args: [String], environment: [String: String] = [:]) throws -> Run {
        if let ranks {
            guard let mpirun = ProcessRunner.mpirun else { throw XCTSkip("mpirun is not installed (launch/setup installs openmpi-bin)") }
            let exported = environment.keys.sorted().flatMap { ["-x", $0] }
            return try ProcessRunner.run(mpirun, ["-np", "\(ranks)", "--oversubscribe", "--bind-to", "none"] + exported
                                         + [ProcessRunner.dpoDist, "train"] + args, extraEnvironment: environment)
        }
        return try ProcessRunner.dpoDist(["train"] + args)
    }

    /// The runs these tests compare, as a --config file (flags after it override it).
    func baseArguments(output: String, perDevice: Int, accumulation: Int, steps: Int = 6) throws -> [String] {
        var a = TrainingRuns.arguments("mpi", steps: steps, perDevice: perDevice, accumulation: accumulation)
        a.evalFile = Fixtures.model("qwen2-untied") + "/pairs.jsonl"
        a.outputDir = output
        a.weightDecay = 0.01
        a.maxNewTokens = 4
        a.seed = 5
        return ["--config", try TrainingRuns.configFile(a)]
    }

    func metrics(_ dir: String) throws -> [[String: Double]] { try Metrics.read(dir) }

    func assertSame(_ a: [[String: Double]], _ b: [[String: Double]], tolerance: Double, _ what: String, line: UInt = #line) {
        Metrics.assertSame(a, b, tolerance: tolerance, what, line: line)
    }

    func finalParameters(_ dir: String) throws -> [Float] {
        try ModelDirectory.load(dir).model.parameters.values.toArray()
    }

    func assertParametersClose(_ a: [Float], _ b: [Float], _ what: String, line: UInt = #line) {
        let worst = Metrics.worstRelativeDifference(a, b)
        print("\(what): final parameters worst relative difference \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-5, what, line: line)
    }

    func testTwoAndFourRanksEqualOneProcess() throws {
        let one = Fixtures.temporaryDirectory("mpi-1")
        let r1 = try train(ranks: nil, try baseArguments(output: one, perDevice: 1, accumulation: 4))
        XCTAssertEqual(r1.status, 0, r1.output)
        for (ranks, accumulation) in [(2, 2), (4, 1)] {
            let dir = Fixtures.temporaryDirectory("mpi-\(ranks)")
            let r = try train(ranks: ranks, try baseArguments(output: dir, perDevice: 1, accumulation: accumulation))
            XCTAssertEqual(r.status, 0, r.output)
            assertSame(try metrics(dir), try metrics(one), tolerance: 1e-6, "mpirun -np \(ranks)")
            assertParametersClose(try finalParameters(dir), try finalParameters(one), "mpirun -np \(ranks)")
        }
    }

    /// LoRA (use_peft, r 4 on every decoder linear): mpirun -np 2, plain and with ZeRO-1, equals one
    /// process with twice the accumulation; the outputs are adapters with the same bits.
    func testLoRAOnTwoRanksEqualsOneProcess() throws {
        let lora = ["--use-peft", "--lora-r", "4", "--lora-target-modules", "all-linear"]
        let one = Fixtures.temporaryDirectory("mpi-lora-1")
        let r1 = try train(ranks: nil, try baseArguments(output: one, perDevice: 1, accumulation: 2, steps: 4) + lora)
        XCTAssertEqual(r1.status, 0, r1.output)
        func adapter(_ dir: String) throws -> [Float] { try AdapterDirectory.load(dir).base.model.adapters!.parameters.values.toArray() }
        for zero in ["0", "1"] {
            let dir = Fixtures.temporaryDirectory("mpi-lora-2")
            let r = try train(ranks: 2, try baseArguments(output: dir, perDevice: 1, accumulation: 1, steps: 4) + lora + ["--zero-stage", zero])
            XCTAssertEqual(r.status, 0, r.output)
            assertSame(try metrics(dir), try metrics(one), tolerance: 1e-6, "LoRA mpirun -np 2 --zero-stage \(zero)")
            XCTAssertEqual(try adapter(dir), try adapter(one), "LoRA mpirun -np 2 --zero-stage \(zero): final adapters")
        }
    }

    func testZeroStageOneAndSimulatedRanksEqualMPI() throws {
        let plain = Fixtures.temporaryDirectory("mpi-plain")
        let r = try train(ranks: 4, try baseArguments(output: plain, perDevice: 1, accumulation: 1))
        XCTAssertEqual(r.status, 0, r.output)
        let zero = Fixtures.temporaryDirectory("mpi-zero")
        let z = try train(ranks: 4, try baseArguments(output: zero, perDevice: 1, accumulation: 1) + ["--zero-stage", "1"])
        XCTAssertEqual(z.status, 0, z.output)
        assertSame(try metrics(zero), try metrics(plain), tolerance: 1e-6, "--zero-stage 1 vs all-reduce")
        assertParametersClose(try finalParameters(zero), try finalParameters(plain), "--zero-stage 1")
        // Small buckets, reduced by non-blocking all-reduces progressed during backward, and by blocking ones.
        for blocking in ["false", "true"] {
            let dir = Fixtures.temporaryDirectory("mpi-buckets-\(blocking)")
            let b = try train(ranks: 4, try baseArguments(output: dir, perDevice: 1, accumulation: 1)
                              + ["--bucket-size-mb", "0.05", "--blocking-buckets", blocking])
            XCTAssertEqual(b.status, 0, b.output)
            assertSame(try metrics(dir), try metrics(plain), tolerance: 1e-6, "buckets of 0.05 MB, blocking \(blocking)")
        }
        let simulated = Fixtures.temporaryDirectory("mpi-sim")
        let s = try train(ranks: nil, try baseArguments(output: simulated, perDevice: 1, accumulation: 1) + ["--simulate-ranks", "4"])
        XCTAssertEqual(s.status, 0, s.output)
        assertSame(try metrics(simulated), try metrics(plain), tolerance: 1e-6, "--simulate-ranks 4 vs mpirun -np 4")
    }

    /// With one micro-batch per rank, blocking buckets travel as fp32 and are summed in fp64 on a ring
    /// (`allReduceSumWidened`), and so does ZeRO-1's reduce-scatter (`reduceScatterSumWidened`). On two
    /// ranks that is the fp64 all-reduce's result to the bit (here the non-blocking buckets, which
    /// all-reduce the widened gradient in fp64); on three, with pieces of unequal size and fp64 partial
    /// sums between the hops, within 1e-6 of it. The ring's blocks are cut small (DPO_DIST_RING_BLOCK),
    /// so that each piece goes round in several.
    func testFP32BucketsSummedInFP64GiveTheFP64AllReduce() throws {
        for ranks in [2, 3] {
            func run(_ name: String, _ options: [String], says: String?) throws -> String {
                let dir = Fixtures.temporaryDirectory("mpi-widened-\(ranks)-\(name)")
                let r = try train(ranks: ranks, try baseArguments(output: dir, perDevice: 1, accumulation: 1) + options,
                                  environment: ["DPO_DIST_RING_BLOCK": "1000"])
                XCTAssertEqual(r.status, 0, r.output)
                if let says { XCTAssertTrue(r.output.contains(says), r.output) }
                return dir
            }
            let exact = try run("fp64", ["--bucket-size-mb", "0.05", "--blocking-buckets", "false"], says: "gradients: fp64 all-reduce")
            let buckets = try run("buckets", ["--bucket-size-mb", "0.05", "--blocking-buckets", "true"],
                                  says: "gradients: summed in fp64 from fp32 buckets")
            let zero = try run("zero1", ["--zero-stage", "1"], says: "gradients: fp32 reduce-scatter summed in fp64")
            for (name, dir) in [("buckets", buckets), ("ZeRO-1", zero)] {
                assertSame(try metrics(dir), try metrics(exact), tolerance: ranks == 2 ? 0 : 1e-6, "\(ranks) ranks, \(name)")
                if ranks == 2 {
                    XCTAssertTrue(try finalParameters(dir) == finalParameters(exact),
                                  "2 ranks, \(name): the final parameters differ from the fp64 all-reduce's")
                } else {
                    assertParametersClose(try finalParameters(dir), try finalParameters(exact), "\(ranks) ranks, \(name)")
                }
            }
        }
    }

    /// The short last batch of an epoch leaves rank 1 without pairs (24 pairs, batches of 5 per rank
    /// × 2 ranks): it must still take part in every reduction, blocking or not, with or without ZeRO.
    func testAShortLastBatchOnMPI() throws {
        var common = try baseArguments(output: "", perDevice: 5, accumulation: 1, steps: -1)
        common += ["--num-train-epochs", "1", "--bucket-size-mb", "0.05"]
        let one = Fixtures.temporaryDirectory("mpi-short-1")
        let r1 = try train(ranks: nil, common + ["--output-dir", one, "--gradient-accumulation-steps", "2"])
        XCTAssertEqual(r1.status, 0, r1.output)
        for extra in [["--blocking-buckets", "true"], ["--blocking-buckets", "false"], ["--zero-stage", "1"]] {
            let dir = Fixtures.temporaryDirectory("mpi-short-2")
            let r = try train(ranks: 2, common + ["--output-dir", dir] + extra)
            XCTAssertEqual(r.status, 0, r.output)
            assertSame(try metrics(dir), try metrics(one), tolerance: 1e-6, "short last batch, \(extra.joined(separator: " "))")
        }
    }

    /// A checkpoint written by 4 ranks, resumed by 2: the steps after it as in the uninterrupted run.
    func testResumeOnAnotherNumberOfRanks() throws {
        let full = Fixtures.temporaryDirectory("mpi-full")
        let r = try train(ranks: 4, try baseArguments(output: full, perDevice: 1, accumulation: 1) + ["--save-steps", "3", "--zero-stage", "1"])
        XCTAssertEqual(r.status, 0, r.output)
        let resumed = Fixtures.temporaryDirectory("mpi-resumed")
        let r2 = try train(ranks: 2, try baseArguments(output: resumed, perDevice: 1, accumulation: 2)
                           + ["--resume-from-checkpoint", full + "/checkpoint-3"])
        XCTAssertEqual(r2.status, 0, r2.output)
        let after = try metrics(full).filter { ($0["step"] ?? 0) > 3 }
        assertSame(try metrics(resumed), after, tolerance: 1e-6, "resumed on 2 ranks from a 4-rank checkpoint")
    }

    /// SIGKILL to one rank in the middle of training: the job ends non-zero within 30 s, the last
    /// checkpoint is intact, and `--resume-from-checkpoint auto` finishes the run from it.
    func testAKilledRankEndsTheJobAndTheRunResumes() throws {
        guard let mpirun = ProcessRunner.mpirun else { throw XCTSkip("mpirun is not installed (launch/setup installs openmpi-bin)") }
        let dir = Fixtures.temporaryDirectory("mpi-kill")
        let arguments = try baseArguments(output: dir, perDevice: 1, accumulation: 1, steps: 3000)
            + ["--save-steps", "10", "--save-total-limit", "2", "--logging-steps", "10"]
        let job = Process()
        job.executableURL = URL(fileURLWithPath: mpirun)
        job.arguments = ["-np", "2", "--oversubscribe", "--bind-to", "none", ProcessRunner.dpoDist, "train"] + arguments
        job.environment = ProcessRunner.environment
        job.standardOutput = FileHandle.nullDevice
        job.standardError = FileHandle.nullDevice
        try job.run()
        // Wait for a checkpoint, so that there is one to resume from.
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: dir + "/checkpoint-20") && job.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertTrue(job.isRunning, "the job ended before it could be killed")
        let ranks = ProcessRunner.childProcesses(of: job.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "rank processes of mpirun: \(ranks)")
        guard let victim = ranks.last else { job.terminate(); return }
        let killedAt = Date()
        kill(victim, SIGKILL)
        while job.isRunning && Date().timeIntervalSince(killedAt) < 60 { Thread.sleep(forTimeInterval: 0.05) }
        let seconds = Date().timeIntervalSince(killedAt)
        if job.isRunning { job.terminate() }
        job.waitUntilExit()
        print("mpirun ended \(String(format: "%.2f", seconds)) s after SIGKILL, status \(job.terminationStatus)")
        XCTAssertLessThan(seconds, 30)
        XCTAssertNotEqual(job.terminationStatus, 0)

        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasPrefix("checkpoint-") }.compactMap { Int($0.dropFirst("checkpoint-".count)) }.sorted()
        let last = try XCTUnwrap(checkpoints.last)
        _ = try ModelDirectory.load(dir + "/checkpoint-\(last)")
        let resumed = try train(ranks: 2, arguments + ["--resume-from-checkpoint", "auto", "--max-steps", "\(last + 20)"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resumed from \(dir)/checkpoint-\(last) at step \(last)"), resumed.output)
        let steps = try metrics(dir).compactMap { $0["step"] }
        XCTAssertEqual(steps.last, Double(last + 20))
    }

    /// Two hosts: two network namespaces joined by a veth pair, a rank in each, started through
    /// mpirun's launcher agent (`ip netns exec` in place of ssh), TCP only. The numbers equal one
    /// process with the same global batch.
    func testTwoHostsInNetworkNamespaces() throws {
        guard let mpirun = ProcessRunner.mpirun else { throw XCTSkip("mpirun is not installed (launch/setup installs openmpi-bin)") }
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("the ip command (iproute2) is not installed")
        }
        let tag = String(getpid() % 100_000)
        let a = "dpo-a-\(tag)", b = "dpo-b-\(tag)", va = "dva\(tag)", vb = "dvb\(tag)"
        let probe = try ProcessRunner.run(ip, ["netns", "add", a])
        guard probe.status == 0 else {
            throw XCTSkip("network namespaces are not permitted here (ip netns add: \(probe.output.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
        defer {
            _ = try? ProcessRunner.run(ip, ["netns", "del", a])
            _ = try? ProcessRunner.run(ip, ["netns", "del", b])
        }
        for command in [["netns", "add", b], ["link", "add", va, "type", "veth", "peer", "name", vb],
                        ["link", "set", va, "netns", a], ["link", "set", vb, "netns", b],
                        ["-n", a, "addr", "add", "10.77.0.1/24", "dev", va], ["-n", b, "addr", "add", "10.77.0.2/24", "dev", vb],
                        ["-n", a, "link", "set", "lo", "up"], ["-n", b, "link", "set", "lo", "up"],
                        ["-n", a, "link", "set", va, "up"], ["-n", b, "link", "set", vb, "up"]] {
            let r = try ProcessRunner.run(ip, command)
            XCTAssertEqual(r.status, 0, "ip \(command.joined(separator: " ")): \(r.output)")
        }
        let work = Fixtures.temporaryDirectory("two-hosts")
        let log = work + "/agent.log"
        // The launcher agent: "agent HOST command…" runs the command in that host's namespace.
        let agent = work + "/agent.sh"
        try """
        #!/bin/sh
        host=$1; shift
        echo "$host" >> \(log)
        case "$host" in 10.77.0.2) ns=\(b) ;; *) ns=\(a) ;; esac
        exec \(ip) netns exec "$ns" /bin/sh -c "$*"
        """.write(toFile: agent, atomically: true, encoding: .utf8)
        chmod(agent, 0o755)
        try "10.77.0.1 slots=1\n10.77.0.2 slots=1\n".write(toFile: work + "/hosts", atomically: true, encoding: .utf8)

        let out = work + "/out"
        let arguments = try baseArguments(output: out, perDevice: 1, accumulation: 1)
        let r = try ProcessRunner.run(ip, ["netns", "exec", a, mpirun, "--hostfile", work + "/hosts", "-np", "2",
                                 "--mca", "plm_rsh_agent", agent, "--mca", "btl", "tcp,self",
                                 "--mca", "btl_tcp_if_include", "10.77.0.0/24", "--mca", "oob_tcp_if_include", "10.77.0.0/24",
                                 "-x", "OMPI_ALLOW_RUN_AS_ROOT", "-x", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "-x", "OPENBLAS_NUM_THREADS",
                                 ProcessRunner.dpoDist, "train"] + arguments)
        XCTAssertEqual(r.status, 0, r.output)
        let launched = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(launched.contains("10.77.0.2"), "the agent started nothing on the second host: \(launched)")

        let one = Fixtures.temporaryDirectory("two-hosts-one")
        let r1 = try train(ranks: nil, try baseArguments(output: one, perDevice: 1, accumulation: 2))
        XCTAssertEqual(r1.status, 0, r1.output)
        assertSame(try metrics(out), try metrics(one), tolerance: 1e-6, "two hosts over TCP")
    }

    /// Ranks started with different options (mpirun's MPMD form gives rank 1 another beta) stop at
    /// start, and the rank that differs names what.
    func testRanksWithDifferentOptionsStopAtStart() throws {
        guard let mpirun = ProcessRunner.mpirun else { throw XCTSkip("mpirun is not installed (launch/setup installs openmpi-bin)") }
        let dir = Fixtures.temporaryDirectory("mpi-mismatch")
        let args = try baseArguments(output: dir, perDevice: 1, accumulation: 1)
        let r = try ProcessRunner.run(mpirun, ["--oversubscribe", "--bind-to", "none", "-np", "1", ProcessRunner.dpoDist, "train"] + args
                            + [":", "-np", "1", ProcessRunner.dpoDist, "train"] + args + ["--beta", "0.2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("rank 1 differs from rank 0 in its training arguments"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.safetensors"), "training went on")
    }

    /// An error on one rank ends the whole job with that rank's message, no rank left waiting.
    func testAnErrorOnAnyRankEndsTheJob() throws {
        let dir = Fixtures.temporaryDirectory("mpi-error")
        let r = try train(ranks: 2, try baseArguments(output: dir, perDevice: 1, accumulation: 1) + ["--train-file", "/nonexistent.jsonl"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("rank 0: /nonexistent.jsonl: no such file") || r.output.contains("rank 1: /nonexistent.jsonl: no such file"), r.output)
        XCTAssertLessThan(r.seconds, 60)
    }

    /// `launch/mpi 2 train` from the user's own directory, every path relative: `--config` and
    /// `--eval-file` on the command line, `model`, `train_file` and `output_dir` inside the YAML.
    /// Both resolve against the caller's directory (as TRL's do), not the repository's.
    func testLaunchMPIKeepsTheCallersDirectory() throws {
        guard ProcessRunner.mpirun != nil else { throw XCTSkip("mpirun is not installed (launch/setup installs openmpi-bin)") }
        let work = Fixtures.temporaryDirectory("mpi-cwd")
        try FileManager.default.copyItem(atPath: Fixtures.model("qwen2-untied") + "/model", toPath: work + "/base")
        try FileManager.default.copyItem(atPath: Fixtures.root + "/trl/train.jsonl", toPath: work + "/pairs.jsonl")
        try FileManager.default.copyItem(atPath: Fixtures.model("qwen2-untied") + "/pairs.jsonl", toPath: work + "/held-out.jsonl")
        try """
        model: base
        train_file: pairs.jsonl
        output_dir: runs/course
        max_steps: 2
        per_device_train_batch_size: 1
        logging_steps: 1
        max_new_tokens: 2
        report_to: none

        """.write(toFile: work + "/course.yaml", atomically: true, encoding: .utf8)
        let r = try ProcessRunner.run(Fixtures.repositoryRoot + "/launch/mpi", ["2", "train", "--config", "course.yaml",
                                                                              "--eval-file", "held-out.jsonl"],
                                      in: work, extraEnvironment: ["DPO_DIST_BIN": ProcessRunner.dpoDist])
        XCTAssertEqual(r.status, 0, r.output)
        // A TRL key that changes nothing is noted once, by rank 0, not by every rank.
        XCTAssertEqual(r.stderr.components(separatedBy: "report_to: none changes nothing").count - 1, 1, r.stderr)
        let lines = try metrics(work + "/runs/course")
        XCTAssertEqual(lines.filter { $0["loss"] != nil }.map { $0["step"] }, [1, 2], r.output)
        XCTAssertTrue(lines.contains { $0["eval_loss"] != nil }, "the eval file was read: \(lines)")
        XCTAssertNoThrow(try ModelDirectory.load(work + "/runs/course"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: Fixtures.repositoryRoot + "/runs/course"))
    }
}
