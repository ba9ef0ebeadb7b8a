import DPOTestSupport
import XCTest
@testable import DPOModel
@testable import Safetensors

/// The engine against transformers (float64 reference over the same weights; see
/// tools/make_model_fixtures.py): logits, per-token log-probs, and the gradient of
/// L = Σ_i Σ_t w_i[t] · logp_i[t] with respect to every parameter tensor.
final class ModelReferenceTests: XCTestCase {
    struct Reference {
        let file: SafetensorsFile
        let sequences: [[Int]]
        func floats(_ name: String) throws -> [Float] { try file.floats(name) }
    }

    func reference(_ name: String) throws -> Reference {
        let file = try SafetensorsFile(path: Fixtures.model(name) + "/reference.safetensors")
        var sequences: [[Int]] = []
        while file.tensors["ids.\(sequences.count)"] != nil {
            sequences.append(try file.int64s("ids.\(sequences.count)").map(Int.init))
        }
        XCTAssertEqual(sequences.count, 3)
        return Reference(file: file, sequences: sequences)
    }

    /// All sequences packed in one batch, every next token scored.
    func packedBatch(_ sequences: [[Int]]) -> TokenBatch {
        var batch = TokenBatch()
        for s in sequences { batch.append(s, scoreFrom: 1) }
        return batch
    }

    func testLogitsMatchTransformers() throws {
        for name in Fixtures.modelNames {
            let loaded = try ModelDirectory.load(Fixtures.model(name) + "/model")
            let ref = try reference(name)
            let batch = packedBatch(ref.sequences)
            let logits = loaded.model.logits(batch)
            let V = loaded.model.config.vocabSize
            var worst: Float = 0
            for (i, start) in batch.starts.enumerated() {
                let expected = try ref.floats("logits.\(i)")
                let ours = logits[(start * V)..<((start + batch.lengths[i]) * V)]
                worst = max(worst, maxAbsDiff(ours, expected))
            }
            print("\(name): logits max |diff| \(worst)")
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(name): logits")
        }
    }

    func testLogProbsAndEveryGradientMatchTransformers() throws {
        for name in Fixtures.modelNames {
            let loaded = try ModelDirectory.load(Fixtures.model(name) + "/model")
            let model = loaded.model
            model.enableGradients()
            model.headChunk = 5  // several chunks, with a ragged last one
            let ref = try reference(name)
            let batch = packedBatch(ref.sequences)
            model.forward(batch)

            var expectedLogp: [Float] = [], weights: [Float] = []
            for i in 0..<ref.sequences.count {
                expectedLogp += try ref.floats("logp.\(i)")
                weights += try ref.floats("weights.\(i)")
            }
            let logp = Array(model.scoredLogProbs)
            let worstRelative = zip(logp, expectedLogp).map { abs($0 - $1) / max(abs($1), 1e-3) }.max()!
            print("\(name): per-token logp max relative diff \(worstRelative)")
            XCTAssertLessThanOrEqual(worstRelative, 1e-4, "\(name): logp")

            weights.withUnsafeBufferPointer { model.backward(batch, dlogp: $0.baseAddress!) }
            let grads = model.parameters.gradients!
            var worstTensor = ("", Float(0))
            for t in model.layout.tensors {
                let expected = try ref.floats("grad." + t.name)
                let ours = UnsafeBufferPointer(start: grads.pointer + t.offset, count: t.count)
                let relative = norm(zip(ours, expected).map { $0 - $1 }) / max(norm(expected), 1e-12)
                if relative > worstTensor.1 { worstTensor = (t.name, relative) }
                XCTAssertLessThanOrEqual(relative, 1e-3, "\(name): gradient of \(t.name), ‖diff‖/‖ref‖ = \(relative)")
            }
            // Every parameter tensor of the reference model has a gradient here, and none is extra.
            let referenceNames = Set(ref.file.tensorNames.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
            XCTAssertEqual(referenceNames, Set(model.layout.tensors.map(\.name)), name)
            print("\(name): worst gradient ‖diff‖/‖ref‖ \(worstTensor.1) (\(worstTensor.0)) over \(model.layout.tensors.count) tensors")
        }
    }

    func testBothConfigFormsParseToTheSameModel() throws {
        for name in Fixtures.modelNames {
            var (v4, _) = try ModelConfig.load(path: Fixtures.model(name) + "/config.v4.json")
            var (v5, _) = try ModelConfig.load(path: Fixtures.model(name) + "/config.v5.json")
            XCTAssertEqual(v4.form, .v4)
            XCTAssertEqual(v5.form, .v5)
            v4.form = .v5
            v5.form = .v5
            XCTAssertEqual(v4, v5, name)
        }
        let (llama3, _) = try ModelConfig.load(path: Fixtures.model("llama3-bf16") + "/model/config.json")
        XCTAssertEqual(llama3.ropeScaling, .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32))
        XCTAssertEqual(llama3.headDim, 32)
        XCTAssertEqual(llama3.storedDType, "bfloat16")
        let (smol, _) = try ModelConfig.load(path: Fixtures.model("smollm3") + "/model/config.json")
        XCTAssertEqual(smol.spec.layerUsesRope, [true, true, true, false])
        XCTAssertTrue(smol.tieWordEmbeddings)
    }

    /// A packed batch gives each sequence the same numbers as running it alone.
    func testPackingEqualsSeparateRuns() throws {
        let loaded = try ModelDirectory.load(Fixtures.model("qwen2-untied") + "/model")
        let ref = try reference("qwen2-untied")
        loaded.model.forward(packedBatch(ref.sequences))
        let packed = Array(loaded.model.scoredLogProbs)
        var separate: [Float] = []
        for s in ref.sequences {
            loaded.model.forward(packedBatch([s]))
            separate += loaded.model.scoredLogProbs
        }
        XCTAssertLessThanOrEqual(maxAbsDiff(packed, separate), 1e-5)
    }
}
