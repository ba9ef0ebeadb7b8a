import DPOTestSupport
import XCTest
@testable import DPOTraining
@testable import Safetensors

/// 10 AdamW steps of our trainer against TRL 1.16's DPOTrainer on the same tiny model and data
/// (tools/make_trl_fixtures.py): per-step loss, rewards/margins, rewards/accuracies, logps/chosen
/// within 1e-4 at step 1 and 2e-3 relative after.
final class TRLParityTests: XCTestCase {
    static let trl = Fixtures.root + "/trl"

    func arguments(case name: String) throws -> TrainingArguments {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.trl)/\(name).config.json"))) as! [String: Any]
        let set = config["dpo_config_set"] as! [String: Any]
        var a = TrainingArguments()
        let model = (config["model"] as! String).replacingOccurrences(of: "Tests/DPOTestSupport/Fixtures", with: Fixtures.root)
        a.model = model
        a.trainFile = Self.trl + "/train.jsonl"
        a.outputDir = Fixtures.temporaryDirectory("trl-\(name)")
        a.maxSteps = set["max_steps"] as! Int
        a.learningRate = set["learning_rate"] as! Double
        a.lrSchedulerType = set["lr_scheduler_type"] as! String
        a.warmupSteps = set["warmup_steps"] as! Int
        a.maxGradNorm = set["max_grad_norm"] as! Double
        a.weightDecay = set["weight_decay"] as! Double
        a.beta = set["beta"] as! Double
        a.lossType = set["loss_type"] as! [String]
        a.labelSmoothing = set["label_smoothing"] as! Double
        a.loggingSteps = set["logging_steps"] as! Int
        a.perDeviceTrainBatchSize = set["per_device_train_batch_size"] as! Int
        a.gradientAccumulationSteps = set["gradient_accumulation_steps"] as! Int
        a.maxLength = set["max_length"] as? Int
        a.shuffle = false
        return a
    }

    func expectedMetrics(_ name: String) throws -> [[String: Any]] {
        try String(contentsOfFile: "\(Self.trl)/\(name).metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    @discardableResult
    func runCase(_ name: String, checkFinalWeights: Bool = false) throws -> [MetricsLine] {
        let args = try arguments(case: name)
        let (lines, trainer) = try TrainingRuns.dpo(args)
        let expected = try expectedMetrics(name)
        XCTAssertEqual(lines.count, expected.count, name)
        var worst: [String: Double] = [:]
        for (ours, ref) in zip(lines, expected) {
            let values = Dictionary(ours.fields.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
            let step = ref["step"] as! Int
            XCTAssertEqual(values["step"] as? Int, step)
            for key in ["loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "rewards/chosen", "rewards/rejected",
                        "logps/rejected", "grad_norm", "learning_rate", "num_tokens"] {
                guard let r = ref[key] as? Double, let o = values[key] as? Double else {
                    XCTFail("\(name) step \(step): \(key) missing"); continue
                }
                let diff = abs(o - r)
                let tolerance = step == 1 ? 1e-4 : 2e-3 * max(abs(r), 1e-2)
                worst[key] = max(worst[key] ?? 0, diff / max(abs(r), 1e-2))
                XCTAssertLessThanOrEqual(diff, tolerance, "\(name) step \(step) \(key): ours \(o), TRL \(r)")
            }
        }
        print("\(name): worst relative diff per metric:", worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1e", $0.value))" }.joined(separator: ", "))
        if checkFinalWeights {
            let final = try SafetensorsFile(path: "\(Self.trl)/\(name).final.safetensors")
            var worstParam: Float = 0
            for t in trainer.policy.layout.tensors {
                let ref = try final.floats(t.name)
                let ours = UnsafeBufferPointer(start: trainer.policy.parameters.values.pointer + t.offset, count: t.count)
                worstParam = max(worstParam, maxAbsDiff(ours, ref))
            }
            print("\(name): final parameters max |diff| \(worstParam)")
            XCTAssertLessThanOrEqual(worstParam, 1e-3)
        }
        return lines
    }

    func testSigmoid() throws { try runCase("sigmoid", checkFinalWeights: true) }
    func testIPO() throws { try runCase("ipo") }
    func testHinge() throws { try runCase("hinge") }
    func testRobust() throws { try runCase("robust") }
    func testGradientAccumulationEqualsLargerBatch() throws { try runCase("sigmoid_accum") }
    func testWeightDecay() throws { try runCase("sigmoid_wd") }
    func testLinearWarmup() throws { try runCase("sigmoid_linear_warmup") }
    func testQwen2WeightDecayOnBiasesAndUntiedHead() throws { try runCase("qwen2_sigmoid_wd") }
}
