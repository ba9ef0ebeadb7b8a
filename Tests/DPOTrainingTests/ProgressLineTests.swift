import XCTest
@testable import DPOTraining

/// The progress line's ETA from steps of known length: a clock the test moves, no sleeping.
final class ProgressLineTests: XCTestCase {
    var now = 0.0
    var written: [String] = []

    func progress(total: Int, startStep: Int = 0) -> ProgressLine {
        ProgressLine(total: total, startStep: startStep, enabled: true, tty: false, clock: { self.now },
                     write: { self.written.append($0) })
    }

    func line(step: Int) -> MetricsLine {
        var line = MetricsLine()
        line.add("step", step)
        line.add("loss", 0.69)
        line.add("learning_rate", 1e-6)
        line.add("grad_norm", 1.0)
        line.add("tokens_per_second", 100.0)
        return line
    }

    /// Steps of `seconds` each from the current step to `step`, then the line of `step`; the ETA it printed.
    func run(_ p: ProgressLine, to step: Int, stepSeconds seconds: Double, from start: Int) -> String {
        now += Double(step - start) * seconds
        p.update(step: step, line: line(step: step))
        let last = written.last ?? ""
        return String(last[last.range(of: "eta ")!.upperBound...].dropLast())  // the ETA, without the newline
    }

    /// A start after a long load, logging every 5 steps of 2 s: the first line already says 95 × 2 s
    /// (dividing the time since the start by one step would give 95 × 10 s).
    func testTheFirstLineAfterAStartHasTheStepsPace() {
        now = 1000  // loading and precompute came before the progress line was made
        let p = progress(total: 100)
        XCTAssertEqual(run(p, to: 5, stepSeconds: 2, from: 0), "3m10s")
        XCTAssertEqual(run(p, to: 10, stepSeconds: 2, from: 5), "3m00s")
    }

    /// A resume at step 50, steps of 3 s: the first line after it (step 60) says 40 × 3 s, counting only
    /// the 10 steps this process ran.
    func testTheFirstLineAfterAResumeCountsOnlyThisProcesssSteps() {
        now = 500
        let p = progress(total: 100, startStep: 50)
        XCTAssertEqual(run(p, to: 60, stepSeconds: 3, from: 50), "2m00s")
        XCTAssertEqual(run(p, to: 61, stepSeconds: 3, from: 60), "1m57s")
    }

    /// When steps get faster the ETA follows: after 30 steps at the new pace it is within 1% of it,
    /// and it never rises on the way.
    func testAChangeOfPaceIsFollowed() {
        var pace = StepPace(step: 0, at: 0)
        pace.reached(step: 10, at: 30)
        XCTAssertEqual(pace.secondsLeft(from: 10, to: 1000), 990 * 3, accuracy: 1e-9)
        var previous = pace.secondsLeft(from: 10, to: 1000)
        for step in 11...40 {
            pace.reached(step: step, at: 30 + Double(step - 10))
            let left = pace.secondsLeft(from: step, to: 1000)
            XCTAssertLessThan(left, previous)
            previous = left
        }
        XCTAssertEqual(pace.secondsPerStep!, 1, accuracy: 0.01)
        XCTAssertGreaterThan(pace.secondsPerStep!, 1)
    }

    /// Five steps logged at once weigh as five steps logged one by one.
    func testALogEveryFewStepsWeighsAsManySteps() {
        var together = StepPace(step: 0, at: 0), apart = StepPace(step: 0, at: 0)
        together.reached(step: 4, at: 16)
        apart.reached(step: 4, at: 16)
        together.reached(step: 9, at: 21)
        for step in 5...9 { apart.reached(step: step, at: 16 + Double(step - 4)) }
        XCTAssertEqual(together.secondsPerStep!, apart.secondsPerStep!, accuracy: 1e-12)
    }

    func testNoETABeforeAnyStep() {
        XCTAssertEqual(StepPace(step: 7, at: 3).secondsLeft(from: 7, to: 20), 0)
    }
}
