import DPOSupport
import Foundation

/// Every failure inside the pipeline; turned into a DPOError naming the source at the API boundary.
struct TemplateError: Error {
    enum Kind {
        case syntax          // the text is not a valid template
        case unsupported     // valid Jinja, but a construct this renderer does not implement
        case runtime         // Jinja would raise too (undefined attribute, bad operand types, ...)
        case raised          // the template called raise_exception(message)
    }
    var kind: Kind
    var message: String
    var line: Int?

    static func syntax(_ message: String, line: Int?) -> TemplateError { .init(kind: .syntax, message: message, line: line) }
    static func unsupported(_ what: String, line: Int? = nil) -> TemplateError { .init(kind: .unsupported, message: what, line: line) }
    static func runtime(_ message: String, line: Int? = nil) -> TemplateError { .init(kind: .runtime, message: message, line: line) }

    func dpoError(source: String) -> DPOError {
        let at = line.map { " (line \($0))" } ?? ""
        switch kind {
        case .syntax: return DPOError("\(source): chat template syntax error: \(message)\(at)")
        case .unsupported: return DPOError("\(source): chat template uses unsupported \(message)\(at)")
        case .runtime: return DPOError("\(source): chat template error\(at): \(message)")
        case .raised: return DPOError("\(source): chat template raised an exception\(at): \(message)")
        }
    }
}
