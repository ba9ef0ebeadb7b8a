import DPOSupport
import Foundation

/// One readable line per log on the console; on a terminal, a progress bar with the ETA.
final class ProgressLine {
    let total: Int
    let enabled: Bool
    let tty: Bool
    /// Seconds on a monotonic clock (tests give their own).
    let clock: () -> Double
    let write: (String) -> Void
    private var pace: StepPace

    /// `startStep` is the step the loop starts from: 0, or the checkpoint's step after a resume. The
    /// clock starts now, after loading and any precompute, so only this process's steps are timed.
    init(total: Int, startStep: Int = 0, enabled: Bool, tty: Bool = isatty(STDERR_FILENO) != 0,
         clock: @escaping () -> Double = monotonicSeconds, write: @escaping (String) -> Void = Console.note) {
        self.total = total
        self.enabled = enabled
        self.tty = tty
        self.clock = clock
        self.write = write
        pace = StepPace(step: startStep, at: clock())
    }

    func update(step: Int, line: MetricsLine) {
        guard enabled else { return }
        pace.reached(step: step, at: clock())
        let values = Dictionary(line.fields.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        func num(_ k: String) -> Double { values[k] as? Double ?? 0 }
        let eta = pace.secondsLeft(from: step, to: total)
        var text = String(format: "step %d/%d  loss %.4f", step, total, num("loss"))
        if values["rewards/accuracies"] != nil {
            text += String(format: "  acc %.3f  margin %.4f", num("rewards/accuracies"), num("rewards/margins"))
        }
        text += String(format: "  lr %.2e  grad %.3f  %.0f tok/s  eta %@", num("learning_rate"), num("grad_norm"),
                       num("tokens_per_second"), formatDuration(eta))
        if tty {
            let width = 24, filled = Int(Double(width) * Double(step) / Double(max(total, 1)))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\u{1B}[K[\(bar)] " + text)
        } else {
            write(text + "\n")
        }
    }

    func note(_ line: MetricsLine) {
        guard enabled else { return }
        let parts = line.fields.compactMap { k, v -> String? in
            guard k.hasPrefix("eval_"), let d = v as? Double else { return nil }
            return String(format: "%@ %.4f", String(k.dropFirst(5)), d)
        }
        write((tty ? "\r\u{1B}[K" : "") + "eval @ step \(line.fields.first?.1 ?? 0): " + parts.joined(separator: "  ") + "\n")
    }

    func finish() { if enabled && tty { write("\n") } }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
    if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s)s"
}

/// Seconds since an arbitrary start that never jump (not the wall clock).
func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Seconds per optimizer step as an exponential moving average over the steps this process ran,
/// and the time left at that pace. The time between two progress lines counts as that many steps
/// of equal length (an eval in between is spread over them, as the evals to come will be): the
/// first line's ETA is already the pace of the first steps, however long loading took or at which
/// step a resume started.
struct StepPace {
    /// The weight of one step's time in the average: the last ten or so steps count.
    static let weightPerStep = 0.2
    private(set) var secondsPerStep: Double?
    private var step: Int
    private var time: Double

    init(step: Int, at time: Double) {
        self.step = step
        self.time = time
    }

    /// Steps up to `step` are done at `time`.
    mutating func reached(step newStep: Int, at newTime: Double) {
        let steps = newStep - step
        guard steps > 0 else { return }
        let seconds = (newTime - time) / Double(steps)
        // `steps` updates of weight w each, all with the same value, in one: 1 − (1 − w)^steps.
        let weight = 1 - pow(1 - Self.weightPerStep, Double(steps))
        secondsPerStep = secondsPerStep.map { $0 + weight * (seconds - $0) } ?? seconds
        step = newStep
        time = newTime
    }

    /// Seconds until `total` from `step` at the current pace (0 before any step was timed).
    func secondsLeft(from step: Int, to total: Int) -> Double {
        (secondsPerStep ?? 0) * Double(max(total - step, 0))
    }
}
