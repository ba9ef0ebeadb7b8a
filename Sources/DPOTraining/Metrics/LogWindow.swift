import Foundation

/// Sums of the per-step metrics over a logging window: means of the steps' values, except
/// grad_norm and learning_rate (the last step's), as transformers logs them.
struct LogWindow {
    var steps = 0
    var lossSum = 0.0
    var lastGradNorm = 0.0
    var lastLearningRate = 0.0
    var seconds = 0.0
    var examples = 0.0
    var tokens = 0.0
    var names: [String] = []
    var meanSums: [Double] = []

    mutating func add(_ r: Trainer.StepReport, metrics: [(String, Double)]) {
        steps += 1
        lossSum += r.sums[.loss]
        names = metrics.map(\.0)
        meanSums = meanSums.isEmpty ? metrics.map(\.1) : zip(meanSums, metrics.map(\.1)).map(+)
        lastGradNorm = r.gradNorm
        lastLearningRate = r.learningRate
        seconds += r.seconds
        examples += r.sums[.pairs]
        tokens += r.sums[.tokens]
    }

    func line(step: Int, epoch: Double, tokensSeen: Double) -> MetricsLine {
        var line = MetricsLine()
        let n = Double(max(steps, 1))
        line.add("step", step)
        line.add("epoch", epoch)
        line.add("loss", lossSum / n)
        line.add("grad_norm", lastGradNorm)
        line.add("learning_rate", lastLearningRate)
        for (name, total) in zip(names, meanSums) { line.add(name, total / n) }
        line.add("num_tokens", tokensSeen)
        line.add("pairs_per_second", seconds > 0 ? examples / seconds : 0)
        line.add("tokens_per_second", seconds > 0 ? tokens / seconds : 0)
        line.add("step_seconds", seconds / n)
        return line
    }
}

extension LogWindow {
    /// The open window. Doubles are stored as their bit patterns: JSON text through Foundation does
    /// not give back every double exactly, and a resumed run must log the same bits.
    var state: [String: Any] {
        ["steps": steps, "loss_sum": exactJSON(lossSum), "last_grad_norm": exactJSON(lastGradNorm),
         "last_learning_rate": exactJSON(lastLearningRate), "seconds": exactJSON(seconds), "examples": exactJSON(examples), "names": names,
         "tokens": exactJSON(tokens), "mean_sums": meanSums.map(exactJSON)]
    }

    init(state: [String: Any]) {
        self.init()
        steps = state["steps"] as? Int ?? 0
        lossSum = doubleFromExactJSON(state["loss_sum"])
        lastGradNorm = doubleFromExactJSON(state["last_grad_norm"])
        lastLearningRate = doubleFromExactJSON(state["last_learning_rate"])
        seconds = doubleFromExactJSON(state["seconds"])
        examples = doubleFromExactJSON(state["examples"])
        names = state["names"] as? [String] ?? []
        tokens = doubleFromExactJSON(state["tokens"])
        meanSums = (state["mean_sums"] as? [Any] ?? []).map(doubleFromExactJSON)
    }
}
