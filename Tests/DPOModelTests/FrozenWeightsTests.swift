import DPOTestSupport
import XCTest
@testable import DPOKernels
@testable import DPOModel
@testable import DPOSupport
@testable import Safetensors

/// A frozen model's BF16 decoder linears kept in bf16 in the files' mappings (`FrozenWeights`):
/// half the memory, and the numbers of an fp32 copy, bit for bit, on every architecture.
final class FrozenWeightsTests: XCTestCase {
    func batch(_ name: String) throws -> TokenBatch {
        let file = try SafetensorsFile(path: Fixtures.model(name) + "/reference.safetensors")
        var b = TokenBatch()
        for i in 0..<3 { b.append(try file.int64s("ids.\(i)").map(Int.init), scoreFrom: 1) }
        return b
    }

    /// LoRA on every linear with A and B drawn at random (B nonzero, so every product of the base
    /// shows in the adapters' gradients): forward's log-probs and backward's adapter gradients.
    func loraPass(_ model: Transformer, batch: TokenBatch) throws -> (logp: [Float], gradients: [Float]) {
        let adapters = try LoRAAdapters(layout: model.layout, config: model.config,
                                        settings: LoRASettings(rank: 2, alpha: 4, targets: ["all-linear"], rslora: false))
        var rng = SplitMix64(seed: 11)
        for i in 0..<adapters.parameters.count { adapters.parameters.values[i] = 0.1 * rng.nextGaussian() }
        model.attach(adapters)
        model.enableGradients(checkpointing: true)
        model.forward(batch)
        let logp = Array(model.scoredLogProbs)
        let dlogp = [Float](repeating: 1, count: logp.count)
        model.backward(batch, dlogp: dlogp)
        return (logp, adapters.parameters.gradients!.toArray())
    }

    /// Each fixture architecture (Phi-3's fused qkv_proj and gate_up_proj included) saved in bf16:
    /// loaded frozen, its decoder linears stay bf16 in the file's mapping, the memory counts say
    /// so (from the headers alone too), and logits, log-probs and LoRA gradients are the fp32 load's.
    func testFrozenBF16LinearsGiveTheBitsOfAnFP32Copy() throws {
        for name in Fixtures.modelNames {
            let original = try ModelDirectory.load(Fixtures.model(name) + "/model")
            let dir = Fixtures.temporaryDirectory("frozen-\(name)") + "/model"
            try ModelDirectory.save(original.model, to: dir, configJSON: original.configJSON, companionsFrom: original.directory, dtype: .bf16)
            let plain = try ModelDirectory.load(dir).model
            let frozen = try ModelDirectory.load(dir, frozen: true).model
            XCTAssertNil(plain.frozenWeights)
            let kept = try XCTUnwrap(frozen.frozenWeights, name)
            let linears = frozen.layout.linearTensors.map(\.tensor)
            XCTAssertEqual(linears.count, frozen.config.numLayers * (frozen.config.spec.fusedProjections ? 4 : 7), name)
            XCTAssertEqual(kept.tensorNames, Set(linears.map(\.name)), name)
            let elements = linears.reduce(0) { $0 + $1.count }
            XCTAssertEqual(frozen.weightBytes.bf16, 2 * elements, name)
            XCTAssertEqual(frozen.weightBytes.fp32, 4 * (frozen.parameterCount - elements), name)
            let counted = try ModelDirectory.weightBytes(dir, frozen: true)
            XCTAssertEqual(counted.fp32, frozen.weightBytes.fp32, name)
            XCTAssertEqual(counted.bf16, frozen.weightBytes.bf16, name)
            XCTAssertEqual(try ModelDirectory.weightBytes(dir, frozen: false).fp32, 4 * plain.parameterCount, name)

            let b = try batch(name)
            let logits = plain.logits(b)
            XCTAssertTrue(frozen.logits(b) == logits, "\(name): logits")
            let ours = try loraPass(frozen, batch: b), theirs = try loraPass(plain, batch: b)
            XCTAssertTrue(ours.logp == theirs.logp, "\(name): log-probs")
            XCTAssertTrue(ours.gradients == theirs.gradients, "\(name): adapter gradients")
            XCTAssertGreaterThan(ours.gradients.map(abs).max() ?? 0, 0, name)

            // Two models over one frozen store (a LoRA run's policy and reference) agree too.
            let twin = frozen.sharingWeights(adapters: nil, matmul: OpenBLASFP32())
            XCTAssertTrue(twin.frozenWeights === frozen.frozenWeights)
            XCTAssertTrue(twin.logits(b) == logits, "\(name): a model sharing the frozen weights")

            var h1 = FNV1a(), h2 = FNV1a()
            frozen.weightsFingerprint(into: &h1)
            try ModelDirectory.load(dir, frozen: true).model.weightsFingerprint(into: &h2)
            XCTAssertEqual(h1.value, h2.value, name)
        }
    }

    /// transformers' own bf16 file, loaded frozen, against transformers' logits over it.
    func testTransformersBF16FileLoadedFrozenMatchesTransformers() throws {
        let model = try ModelDirectory.load(Fixtures.model("llama3-bf16") + "/model", frozen: true).model
        XCTAssertNotNil(model.frozenWeights)
        let ref = try SafetensorsFile(path: Fixtures.model("llama3-bf16") + "/reference.safetensors")
        let b = try batch("llama3-bf16")
        let logits = model.logits(b), V = model.config.vocabSize
        var worst: Float = 0
        for (i, start) in b.starts.enumerated() {
            worst = max(worst, maxAbsDiff(logits[(start * V)..<((start + b.lengths[i]) * V)], try ref.floats("logits.\(i)")))
        }
        XCTAssertLessThanOrEqual(worst, 1e-4)
    }

    /// An fp32 file keeps every weight in the fp32 buffer, as before: nothing to keep in bf16.
    func testAnFP32FileLoadedFrozenKeepsFP32() throws {
        let model = try ModelDirectory.load(Fixtures.model("llama-tied") + "/model", frozen: true).model
        XCTAssertNil(model.frozenWeights)
        XCTAssertEqual(model.weightBytes.bf16, 0)
    }

    /// A buffer whose pages come on first write: 2 GB of it, one page written, costs a page.
    func testPagesOnFirstWriteCostNothingUntilWritten() throws {
        func residentBytes() throws -> Int {
            let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
            return Int(statm[1])! * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        let before = try residentBytes()
        let buffer = FloatBuffer(pagesOnFirstWrite: 512 << 20)
        buffer[1000] = 3
        let after = try residentBytes()
        XCTAssertEqual(buffer[1000], 3)
        XCTAssertEqual(buffer[buffer.count - 1], 0)
        XCTAssertLessThan(after - before, 64 << 20, "resident memory grew by \(after - before) bytes")
    }
}
