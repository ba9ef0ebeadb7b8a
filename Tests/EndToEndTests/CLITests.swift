import DPOSupport
import DPOTestSupport
import XCTest
@testable import DPOModel
import DPOTraining
#if canImport(Glibc)
import Glibc
#endif

/// The `dpo-dist` executable as a user meets it: bad input ends with one clear line naming the file,
/// a non-zero exit, and no crash.
final class CLITests: XCTestCase {
    func run(_ arguments: [String]) throws -> ProcessResult { try ProcessRunner.dpoDist(arguments) }

    func assertCleanFailure(_ r: ProcessResult, mentions fragments: [String], line: UInt = #line) {
        XCTAssertEqual(r.reason, .exit, "ended by a signal: a crash", line: line)
        XCTAssertNotEqual(r.status, 0, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line on stderr, got: \(r.stderr)", line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\"\(r.stderr)\" should mention \"\(f)\"", line: line) }
    }

    func modelCopy(_ name: String = "llama-tied") throws -> String {
        let dir = Fixtures.temporaryDirectory() + "/model"
        try FileManager.default.copyItem(atPath: Fixtures.model(name) + "/model", toPath: dir)
        return dir
    }

    func score(_ model: String, data: String? = nil) throws -> ProcessResult {
        try run(["score", "--model", model, "--data", data ?? Fixtures.model("llama-tied") + "/pairs.jsonl", "--output", "-"])
    }

    /// `--version` prints the one version constant as "dpo-dist MAJOR.MINOR.PATCH" on stdout, nothing
    /// else, and exits 0 (before any model, data or MPI is touched).
    func testVersionPrintsTheVersionConstant() throws {
        let r = try run(["--version"])
        XCTAssertEqual(r.reason, .exit)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "dpo-dist \(dpoDistVersion)\n")
        XCTAssertNotNil(r.stdout.range(of: #"^dpo-dist [0-9]+\.[0-9]+\.[0-9]+\n$"#, options: .regularExpression), r.stdout)
        XCTAssertEqual(r.stderr, "")
    }

    /// A TRL config pasted with its harmless keys trains, each such key said once on stderr as a
    /// note (also with two simulated ranks); one that would change the run ends with one line.
    func testATRLConfigPastesWithNotesAndRefusals() throws {
        var a = TrainingRuns.arguments("trl-paste", model: "llama-tied", steps: 1)
        a.loggingSteps = 1
        let trl = "fp16: false\nreport_to: none\npadding_free: true\n"
        let path = try TrainingRuns.configFile(a)
        try (try String(contentsOfFile: path, encoding: .utf8) + trl).write(toFile: path, atomically: true, encoding: .utf8)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let fp16Line = lines.firstIndex(of: "fp16: false")! + 1
        for extra in [[], ["--simulate-ranks", "2", "--overwrite-output-dir"]] {
            let r = try run(["train", "--config", path] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let notes = r.stderr.split(separator: "\n").filter { $0.hasPrefix("note: ") }
            XCTAssertEqual(notes.count, 3, r.stderr)
            XCTAssertEqual(notes.first.map(String.init)?.hasPrefix("note: \(path):\(fp16Line): fp16: false changes nothing in dpo-dist"), true, r.stderr)
        }
        try (try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "fp16: false", with: "fp16: true"))
            .write(toFile: path, atomically: true, encoding: .utf8)
        assertCleanFailure(try run(["train", "--config", path]), mentions: ["\(path):\(fp16Line): fp16: true", "use bf16: true"])
    }

    /// A Hub id as --model, where no such folder exists: the error names the commands that download it.
    func testAHubIDAsTheModelNamesTheDownloadCommand() throws {
        let id = "HuggingFaceTB/SmolLM2-135M-Instruct"
        assertCleanFailure(try score(id), mentions: ["\(id): no such model directory", "hf download \(id) --local-dir models/SmolLM2-135M-Instruct",
                                                      "huggingface-cli download \(id) --local-dir"])
    }

    func testScoreWritesOneLinePerPair() throws {
        let r = try score(Fixtures.model("llama-tied") + "/model")
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 5)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        XCTAssertEqual(Set(first.keys), ["chosen_logps", "rejected_logps", "chosen_tokens", "rejected_tokens", "prompt_tokens"])
    }

    /// `merge` writes a whole model whose log-probs are PEFT's for the adapter (as transformers gives
    /// for it: tools/check_saved_adapter.py --merged), and `score` reads the adapter directory itself.
    func testMergeAndScoreOfAnAdapter() throws {
        let adapter = Fixtures.root + "/trl/lora/written-by-dpo-dist"
        let merged = Fixtures.temporaryDirectory("merged")
        let m = try run(["merge", "--model", adapter, "--output-dir", merged])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: merged + "/adapter_config.json"))
        let peft = try String(contentsOfFile: adapter + ".peft-logps.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        for model in [merged, adapter] {
            let r = try run(["score", "--model", model, "--data", Fixtures.root + "/trl/train.jsonl", "--output", "-"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let lines = r.stdout.split(separator: "\n")
            XCTAssertEqual(lines.count, peft.count)
            for (line, expected) in zip(lines, peft) {
                let ours = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                for key in ["chosen_logps", "rejected_logps"] {
                    let o = ours[key] as! Double, e = expected[key] as! Double
                    XCTAssertLessThanOrEqual(abs(o - e) / abs(e), 1e-4, "\(model) \(key): ours \(o), PEFT \(e)")
                }
            }
        }
        assertCleanFailure(try run(["merge", "--model", Fixtures.model("llama-tied") + "/model", "--output-dir", merged + "-2"]),
                           mentions: ["holds no adapter_config.json"])
    }

    /// A log reader that goes away (stderr is a pipe whose reader closed at once): SIGPIPE no longer
    /// kills the run, it trains to the end and saves its model.
    func testAClosedLogPipeDoesNotEndTraining() throws {
        var a = TrainingRuns.arguments("sigpipe", model: "llama-tied", steps: 3)
        a.loggingSteps = 1
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ProcessRunner.dpoDist)
        p.arguments = ["train", "--config", try TrainingRuns.configFile(a)]
        p.environment = ProcessRunner.environment
        let stderr = Pipe()
        p.standardError = stderr
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        try stderr.fileHandleForReading.close()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, "ended by signal \(p.terminationStatus)")
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertNoThrow(try ModelDirectory.load(a.outputDir))
    }

    func testTruncatedSafetensorsEndsWithOneLine() throws {
        let dir = try modelCopy()
        let path = dir + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(100).write(to: URL(fileURLWithPath: path))
        assertCleanFailure(try score(dir), mentions: ["model.safetensors"])
    }

    func testHeaderOffsetsOutsideTheFileEndWithOneLine() throws {
        let dir = try modelCopy()
        let path = dir + "/model.safetensors"
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data = data.prefix(data.count - 64)  // the last tensor's end offset now lies past the end
        try data.write(to: URL(fileURLWithPath: path))
        assertCleanFailure(try score(dir), mentions: ["model.safetensors"])
    }

    func testCorruptHeaderEndsWithOneLine() throws {
        let dir = try modelCopy()
        let path = dir + "/model.safetensors"
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        for i in 8..<40 { data[i] = UInt8(ascii: "#") }
        try data.write(to: URL(fileURLWithPath: path))
        assertCleanFailure(try score(dir), mentions: ["model.safetensors"])
    }

    func testWrongShapeEndsWithOneLine() throws {
        let dir = try modelCopy("qwen2-untied")
        let path = dir + "/config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        json["vocab_size"] = 300
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        assertCleanFailure(try score(dir), mentions: ["embed_tokens", "[300, 64]"])
    }

    func testHeadsNotDividingHiddenEndWithOneLine() throws {
        let dir = try modelCopy()
        let path = dir + "/config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        json["num_attention_heads"] = 6
        json.removeValue(forKey: "head_dim")
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        assertCleanFailure(try score(dir), mentions: ["config.json", "num_attention_heads 6"])
    }

    func testUnsupportedTokenizerModelEndsWithOneLine() throws {
        let dir = try modelCopy()
        let path = dir + "/tokenizer.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        var model = json["model"] as! [String: Any]
        model["type"] = "Unigram"
        json["model"] = model
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        assertCleanFailure(try score(dir), mentions: ["tokenizer.json", "Unigram"])
    }

    func testScoresNeverReplaceTheirInputs() throws {
        let dir = try modelCopy()
        let data = Fixtures.temporaryDirectory() + "/pairs.jsonl"
        try FileManager.default.copyItem(atPath: Fixtures.model("llama-tied") + "/pairs.jsonl", toPath: data)
        let before = try Data(contentsOf: URL(fileURLWithPath: data))
        assertCleanFailure(try run(["score", "--model", dir, "--data", data, "--output", data]), mentions: ["is the --data file"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: data)), before)
        assertCleanFailure(try run(["score", "--model", dir, "--data", data, "--output", dir + "/config.json"]),
                           mentions: ["inside the --model directory"])
        XCTAssertNoThrow(try ModelDirectory.load(dir))
    }

    func testBadDataRowEndsWithOneLine() throws {
        let data = Fixtures.temporaryDirectory() + "/bad.jsonl"
        try "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\"}\n".write(toFile: data, atomically: true, encoding: .utf8)
        assertCleanFailure(try score(Fixtures.model("llama-tied") + "/model", data: data), mentions: ["bad.jsonl:2", "chosen"])
    }
}

/// Outputs that are not regular files: a device stays a device, a symlinked output directory is
/// written through, a file given as the output directory is refused before any work.
final class OutputPathTests: XCTestCase {
    func run(_ arguments: [String]) throws -> ProcessResult { try ProcessRunner.dpoDist(arguments) }

    private func isCharacterDevice(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFCHR
    }

    func testScoreIntoADeviceLeavesItADevice() throws {
        let dir = Fixtures.temporaryDirectory("device")
        guard let device = try Fixtures.nullDevice(at: dir + "/null") else { throw XCTSkip("mknod is not permitted here (not root, or no CAP_MKNOD)") }
        let r = try run(["score", "--model", Fixtures.model("llama-tied") + "/model", "--data", Fixtures.model("llama-tied") + "/pairs.jsonl",
                         "--output", device])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(isCharacterDevice(device), "score replaced the device with a file")
        // A directory as --output is refused before the model is even loaded.
        let refused = try run(["score", "--model", dir + "/no-model", "--data", Fixtures.model("llama-tied") + "/pairs.jsonl", "--output", dir])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("is a directory"), refused.stderr)
    }

    func testTrainingThroughASymlinkedOutputDirectory() throws {
        let dir = Fixtures.temporaryDirectory("linked-output")
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/out", withDestinationPath: dir + "/real")
        var a = TrainingRuns.arguments("linked", model: "llama-tied", steps: 1)
        a.outputDir = dir + "/out"
        let r = try run(["train", "--config", try TrainingRuns.configFile(a)])
        XCTAssertEqual(r.status, 0, r.stderr)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/out")
        XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeSymbolicLink, "the output directory link was replaced")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/real/model.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/real/metrics.jsonl"))
    }

    func testAFileAsTheOutputDirectoryIsRefusedFirst() throws {
        let dir = Fixtures.temporaryDirectory("file-output")
        try Data("keep\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        var a = TrainingRuns.arguments("file-out", model: "llama-tied", steps: 1)
        a.outputDir = dir + "/notes.txt"
        let r = try run(["train", "--config", try TrainingRuns.configFile(a)])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains("notes.txt") && r.stderr.contains("is not a directory"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertEqual(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8), "keep\n")
    }
}
