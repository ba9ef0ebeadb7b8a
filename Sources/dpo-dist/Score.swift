import ArgumentParser
import DPOCore
import Foundation

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Score preference pairs: summed completion log-probs under a model.")
    func run() throws {}
}
