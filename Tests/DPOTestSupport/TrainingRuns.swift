import DPOComm
import DPOKernels
import DPOTraining
import Foundation
import XCTest

/// Small training runs on the fixture models: the arguments most trainer tests start from, a run
/// that collects its metrics lines, and the comparison of two runs' metrics.
public enum TrainingRuns {
    /// A few DPO steps of `model` (a fixture model's name) on the TRL fixture's 24 pairs, writing
    /// to a new temporary directory: each test changes what it is about.
    public static func arguments(_ tag: String, model: String = "qwen2-untied", steps: Int = 5, perDevice: Int = 2,
                                 accumulation: Int = 1, learningRate: Double = 1e-3) -> TrainingArguments {
        var a = TrainingArguments()
        a.model = Fixtures.model(model) + "/model"
        a.trainFile = Fixtures.root + "/trl/train.jsonl"
        a.outputDir = Fixtures.temporaryDirectory(tag)
        a.maxSteps = steps
        a.learningRate = learningRate
        a.perDeviceTrainBatchSize = perDevice
        a.gradientAccumulationSteps = accumulation
        a.loggingSteps = 1
        return a
    }

    /// `arguments` written as a YAML config for `dpo-dist train --config`.
    public static func configFile(_ a: TrainingArguments) throws -> String {
        let path = Fixtures.temporaryDirectory("config") + "/train.yaml"
        try a.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs a trainer to the end (or to `interruptAfter`), quietly; the metrics lines rank 0 logged.
    @discardableResult
    public static func run(_ trainer: Trainer, interruptAfter: Int? = nil) throws -> [MetricsLine] {
        trainer.printProgress = false
        trainer.interruptAfterStep = interruptAfter
        var lines: [MetricsLine] = []
        trainer.onLog = { lines.append($0) }
        try trainer.run()
        return lines
    }

    /// A DPO run in this process, one rank.
    @discardableResult
    public static func dpo(_ a: TrainingArguments, interruptAfter: Int? = nil) throws -> (lines: [MetricsLine], trainer: Trainer) {
        let trainer = try Trainer.dpo(args: a, comm: SingleProcessCommunicator())
        return (try run(trainer, interruptAfter: interruptAfter), trainer)
    }
}

/// metrics.jsonl lines as numbers, without the timing fields (which differ from run to run).
public enum Metrics {
    public static let timing: Set<String> = ["pairs_per_second", "tokens_per_second", "step_seconds"]

    public static func values(_ lines: [MetricsLine]) -> [[String: Double]] {
        lines.map { line in
            var d: [String: Double] = [:]
            for (k, v) in line.fields where !timing.contains(k) {
                if let x = v as? Double { d[k] = x } else if let i = v as? Int { d[k] = Double(i) }
            }
            return d
        }
    }

    /// OUTPUT_DIR/metrics.jsonl of a finished run.
    public static func read(_ outputDir: String) throws -> [[String: Double]] {
        try String(contentsOfFile: outputDir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestSetupError("\(outputDir)/metrics.jsonl: a line is not a JSON object: \(line)")
            }
            var d: [String: Double] = [:]
            for (k, v) in object where !timing.contains(k) { d[k] = (v as? NSNumber)?.doubleValue }
            return d
        }
    }

    /// The same lines, every value within `tolerance` relative (|a − b| / max(|b|, 1e-3)); prints the worst.
    public static func assertSame(_ a: [[String: Double]], _ b: [[String: Double]], tolerance: Double, _ what: String = "",
                                  file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        var worst = 0.0
        for (x, y) in zip(a, b) {
            XCTAssertEqual(Set(x.keys), Set(y.keys), what, file: file, line: line)
            for (k, v) in x {
                let w = y[k] ?? .nan
                let rel = abs(v - w) / max(abs(w), 1e-3)
                worst = max(worst, rel)
                XCTAssertLessThanOrEqual(rel, tolerance, "\(what): \(k) \(v) vs \(w)", file: file, line: line)
            }
        }
        print("\(what): \(a.count) metrics lines, worst relative difference \(worst)")
    }

    /// ‖a − b‖ / ‖b − start‖: how far two runs' final parameters are apart, as a share of how far
    /// the run moved them from `start`. Unlike an element-wise relative difference it does not blow up
    /// where AdamW turns a near-zero gradient's rounding into a step of up to the learning rate.
    public static func differenceOverUpdate(_ a: FloatBuffer, _ b: FloatBuffer, start: FloatBuffer) -> Double {
        var apart = 0.0, moved = 0.0
        for i in 0..<b.count {
            let d = Double(a.pointer[i]) - Double(b.pointer[i]), u = Double(b.pointer[i]) - Double(start.pointer[i])
            apart += d * d; moved += u * u
        }
        return a.count == b.count && b.count == start.count && moved > 0 ? (apart / moved).squareRoot() : .nan
    }

    /// Worst |a − b| / max(|b|, 1e-3) over two parameter buffers.
    public static func worstRelativeDifference<A: Sequence, B: Sequence>(_ a: A, _ b: B) -> Float
    where A.Element == Float, B.Element == Float {
        zip(a, b).map { abs($0 - $1) / max(abs($1), 1e-3) }.max() ?? .nan
    }
}
