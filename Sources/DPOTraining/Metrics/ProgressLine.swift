import DPOSupport
import Foundation

/// One readable line per log on the console; on a terminal, a progress bar with the ETA.
final class ProgressLine {
    let total: Int
    let enabled: Bool
    let tty = isatty(STDERR_FILENO) != 0
    let started = Date()
    var firstStep: Int?

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    private func write(_ s: String) { Console.note(s) }

    func update(step: Int, line: MetricsLine) {
        guard enabled else { return }
        if firstStep == nil { firstStep = step - 1 }
        let values = Dictionary(line.fields.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        func num(_ k: String) -> Double { values[k] as? Double ?? 0 }
        let done = step - (firstStep ?? 0)
        let elapsed = Date().timeIntervalSince(started)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - step) : 0
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
