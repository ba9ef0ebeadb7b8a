import DPOData
import DPOKernels
import DPOModel
import DPOSupport
import Foundation
import Tokenization

/// One eval pair as the final eval saw it, a line of OUTPUT_DIR/eval_records.jsonl (written by
/// `train` and `eval` at their end, read by `report`):
/// - `index` (0-based among the eval pairs kept), `line` (in the eval file), `prompt`, `chosen`,
///   `rejected` as in the data (conversational rows: the messages' contents joined);
/// - `chosen_tokens`, `rejected_tokens`: completion tokens scored (the appended EOS counted);
/// - `policy_logps_chosen`, `policy_logps_rejected`, `ref_logps_chosen`, `ref_logps_rejected`: summed
///   completion log-probs (`ref_*` null for a reference-free loss);
/// - `reward_chosen`, `reward_rejected`, `reward_margin`: beta × (policy − reference log-prob), as
///   `eval_rewards/*` average them (a reference-free loss counts the reference as 0);
/// - `policy_greedy`, `ref_greedy`: the greedy completion of the prompt (at most `max_new_tokens`,
///   ending at EOS; decoded without special tokens; `ref_greedy` null without a reference), and
///   `policy_greedy_tokens`, `ref_greedy_tokens`: its tokens, a final EOS counted as in the data.
public struct EvalRecord: Codable, Equatable, Sendable {
    public var index: Int
    public var line: Int
    public var prompt: String
    public var chosen: String
    public var rejected: String
    public var chosenTokens: Int
    public var rejectedTokens: Int
    public var policyLogpsChosen: Double
    public var policyLogpsRejected: Double
    public var refLogpsChosen: Double?
    public var refLogpsRejected: Double?
    public var rewardChosen: Double
    public var rewardRejected: Double
    public var rewardMargin: Double
    public var policyGreedy: String
    public var policyGreedyTokens: Int
    public var refGreedy: String?
    public var refGreedyTokens: Int?

    enum CodingKeys: String, CodingKey {
        case index, line, prompt, chosen, rejected
        case chosenTokens = "chosen_tokens", rejectedTokens = "rejected_tokens"
        case policyLogpsChosen = "policy_logps_chosen", policyLogpsRejected = "policy_logps_rejected"
        case refLogpsChosen = "ref_logps_chosen", refLogpsRejected = "ref_logps_rejected"
        case rewardChosen = "reward_chosen", rewardRejected = "reward_rejected", rewardMargin = "reward_margin"
        case policyGreedy = "policy_greedy", policyGreedyTokens = "policy_greedy_tokens"
        case refGreedy = "ref_greedy", refGreedyTokens = "ref_greedy_tokens"
    }

    public init(index: Int, line: Int, prompt: String, chosen: String, rejected: String, chosenTokens: Int, rejectedTokens: Int,
                policyLogpsChosen: Double, policyLogpsRejected: Double, refLogpsChosen: Double?, refLogpsRejected: Double?,
                rewardChosen: Double, rewardRejected: Double, policyGreedy: String, policyGreedyTokens: Int,
                refGreedy: String?, refGreedyTokens: Int?) {
        self.index = index; self.line = line; self.prompt = prompt; self.chosen = chosen; self.rejected = rejected
        self.chosenTokens = chosenTokens; self.rejectedTokens = rejectedTokens
        self.policyLogpsChosen = policyLogpsChosen; self.policyLogpsRejected = policyLogpsRejected
        self.refLogpsChosen = refLogpsChosen; self.refLogpsRejected = refLogpsRejected
        self.rewardChosen = rewardChosen; self.rewardRejected = rewardRejected; rewardMargin = rewardChosen - rewardRejected
        self.policyGreedy = policyGreedy; self.policyGreedyTokens = policyGreedyTokens
        self.refGreedy = refGreedy; self.refGreedyTokens = refGreedyTokens
    }

    /// What a greedy completion is, against the pair: the chosen text, the rejected text, or neither.
    /// Texts are compared with surrounding whitespace removed (the data's completions usually begin
    /// with a space the tokenizer may merge differently); a pair whose chosen equals its rejected
    /// counts as chosen.
    public enum Outcome: String, CaseIterable, Sendable { case chosen, rejected, neither }

    public func outcome(of completion: String) -> Outcome {
        func bare(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }
        let c = bare(completion)
        if c == bare(chosen) { return .chosen }
        if c == bare(rejected) { return .rejected }
        return .neither
    }
}

/// OUTPUT_DIR/eval_records.jsonl (see `EvalRecord`).
public enum EvalRecords {
    public static let fileName = "eval_records.jsonl"

    public static func write(_ records: [EvalRecord], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var text = Data()
        for r in records {
            do { text.append(try encoder.encode(r)) } catch {
                throw DPOError.file(path, "eval record \(r.index) cannot be written as JSON: \(error)")
            }
            text.append(0x0A)
        }
        try OutputFile.write(text, to: path)
    }

    /// Removes DIR/eval_records.jsonl if there is one.
    public static func remove(from directory: String) throws {
        let path = directory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { return }
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw DPOError.file(path, "cannot remove an earlier run's eval records: \(error.localizedDescription)")
        }
    }

    /// The records of a file; a line that is not a record is an error naming the line.
    public static func read(_ path: String) throws -> [EvalRecord] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DPOError.file(path, "cannot read: \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var records: [EvalRecord] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy({ $0.isWhitespace }) {
            do { records.append(try decoder.decode(EvalRecord.self, from: Data(line.utf8))) } catch {
                throw DPOError.file("\(path):\(n + 1)", "not an eval record (\(describe(error)))")
            }
        }
        return records
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "no \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "\"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        case DecodingError.dataCorrupted: return "not JSON"
        default: return "\(error)"
        }
    }
}

/// The machine a run ran on, OUTPUT_DIR/run_machine.json (written by `train` and `eval` at their
/// end, so that `report`, run later or elsewhere, names the machine the numbers come from).
public struct RunMachine: Codable, Equatable, Sendable {
    public static let fileName = "run_machine.json"
    public var host: String
    public var cpu: String
    public var cores: Int
    public var memoryBytes: Int
    public var operatingSystem: String
    public var ranks: Int
    /// OpenBLAS's threads per rank (rank 0's, at the end of the run) and its kernels.
    public var blasThreads: Int
    public var blasKernels: String
    public var matmul: String
    /// When the run's report was written, ISO 8601.
    public var date: String

    enum CodingKeys: String, CodingKey {
        case host, cpu, cores, ranks, matmul, date
        case memoryBytes = "memory_bytes", operatingSystem = "operating_system"
        case blasThreads = "blas_threads", blasKernels = "blas_kernels"
    }

    public static func current(ranks: Int, bf16: Bool) -> RunMachine {
        let info = ProcessInfo.processInfo
        return RunMachine(host: info.hostName, cpu: BLASCore.cpuName(), cores: info.activeProcessorCount,
                          memoryBytes: Int(clamping: info.physicalMemory), operatingSystem: info.operatingSystemVersionString,
                          ranks: ranks, blasThreads: BLASCore.threads, blasKernels: BLASCore.name,
                          matmul: bf16 ? "bf16 (oneDNN)" : "fp32 (OpenBLAS)",
                          date: ISO8601DateFormatter().string(from: Date()))
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try OutputFile.write(try encoder.encode(self), to: path)
    }

    public static func read(_ path: String) throws -> RunMachine {
        guard let data = FileManager.default.contents(atPath: path) else { throw DPOError.file(path, "cannot read") }
        do { return try JSONDecoder().decode(RunMachine.self, from: data) } catch {
            throw DPOError.file(path, "not a machine description (\(EvalRecords.describe(error)))")
        }
    }
}

extension DPOObjective {
    /// The final eval pair by pair, in this process alone (rank 0 at the end of `train`, or `eval`):
    /// the eval forward pass again for each pair's log-probs, and a greedy completion of every eval
    /// prompt by the policy and the reference. Generation re-runs the sequence per token (no KV
    /// cache), so this costs eval pairs × max_new_tokens forward passes of each model.
    func evalRecords() throws -> [EvalRecord] {
        guard let eval else { return [] }
        var stops = Set<Int>()
        if let eos = tokenizer.eosTokenID { stops.insert(eos) }
        let greedy = GenerationSettings(maxNewTokens: args.maxNewTokens, temperature: 0, seed: args.seed)
        func complete(_ model: Transformer, _ prompt: [Int]) -> (String, Int) {
            guard !prompt.isEmpty else { return ("", 0) }
            let ids = Generator.generate(model: model, prompt: prompt, stopTokens: stops, settings: greedy)
            return (tokenizer.decode(ids, skipSpecialTokens: true), ids.count)
        }
        let size = max(args.perDeviceEvalBatchSize, 1)
        var records: [EvalRecord] = []
        for start in stride(from: 0, to: eval.count, by: size) {
            let indices = Array(start..<min(start + size, eval.count))
            let micro = forwardPairs(indices, data: eval, cache: nil)
            for (k, i) in indices.enumerated() {
                let p = micro.pairs[k], row = eval.rows[i]
                let promptIDs = try EvalReport.promptIDs(row, tokenizer: tokenizer)
                let (policyText, policyTokens) = complete(policy, promptIDs)
                let ref = reference.map { complete($0, promptIDs) }
                records.append(EvalRecord(
                    index: i, line: eval.lines[i], prompt: row.prompt, chosen: row.chosen, rejected: row.rejected,
                    chosenTokens: p.chosenTokens, rejectedTokens: p.rejectedTokens,
                    policyLogpsChosen: p.policyChosen, policyLogpsRejected: p.policyRejected,
                    refLogpsChosen: reference == nil ? nil : p.referenceChosen,
                    refLogpsRejected: reference == nil ? nil : p.referenceRejected,
                    rewardChosen: args.beta * (p.policyChosen - p.referenceChosen),
                    rewardRejected: args.beta * (p.policyRejected - p.referenceRejected),
                    policyGreedy: policyText, policyGreedyTokens: policyTokens,
                    refGreedy: ref?.0, refGreedyTokens: ref?.1))
            }
        }
        return records
    }
}
