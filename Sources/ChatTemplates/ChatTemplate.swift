import DPOSupport
import Foundation

// Hugging Face chat templates (Jinja2) rendered in Swift, byte-equal to
// `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`.
//
// transformers renders with `jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True)` plus the loop-controls extension, a `{% generation %}` tag, the globals
// `raise_exception`, `strftime_now`, `namespace` and `dict`, and its own `tojson` filter. This file is
// the public face; the work is done by a small pipeline:
//
//   Lexer/      text → tokens (whitespace control, trim_blocks, lstrip_blocks)
//   Parser/     tokens → AST; unknown filters, tests and tags are refused here
//   Evaluator/  AST + variables → text (scopes, loops, macros, expressions)
//   Values/     Python's value semantics (truth, ==, str(), repr(), json.dumps)
//   Builtins/   globals, attribute access, operators, tests, filters, str/dict methods, strftime
//
// What it cannot render it refuses with a DPOError that names the construct; it never renders
// something else instead.

public final class ChatTemplate {
    /// Where the template came from (e.g. the tokenizer_config.json path); every error names it.
    public let source: String
    private let program: [TemplateNode]

    /// Parses once; throws DPOError naming `source` and the construct it cannot handle, e.g.
    /// `tokenizer_config.json: chat template uses unsupported filter "foo" (line 3)`.
    public init(_ template: String, source: String) throws {
        self.source = source
        do {
            var lexer = TemplateLexer(template)
            let tokens = try lexer.tokenize()
            var parser = TemplateParser(tokens: tokens)
            program = try parser.parseTemplate()
        } catch let error as TemplateError {
            throw error.dpoError(source: source)
        }
    }

    /// Renders `messages` as transformers does. `bosToken`/`eosToken` become the template variables
    /// `bos_token`/`eos_token` (left undefined when nil, as transformers leaves out special tokens the
    /// tokenizer does not have); `tools` and `documents` are none unless `variables` sets them, as in
    /// `apply_chat_template`. Extra variables (e.g. `enable_thinking`, `xml_tools`, `date_string`) come
    /// from `variables`: String, Bool, integers, Double, arrays, `[String: Any]` (keys sorted), nil/NSNull
    /// (none) or `ChatTemplateValue` (keeps key order). `now` is what `strftime_now` formats, in the
    /// local time zone like Python's `datetime.now()`; pass a fixed date for reproducible renders.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
                       variables: [String: Any] = [:], now: Date = Date()) throws -> String {
        var context: [String: TemplateValue] = [
            "messages": .list(messages.map { message in
                .dict(TemplateDict([("role", .string(message.role)), ("content", .string(message.content))]))
            }),
            "tools": .null,
            "documents": .null,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (name, value) in variables {
            do {
                context[name] = try TemplateValue(swiftValue: value)
            } catch let error as TemplateError {
                throw DPOError("\(source): chat template variable \"\(name)\": \(error.message)")
            }
        }
        do {
            let evaluator = TemplateEvaluator(context: context, now: now)
            return try evaluator.render(program)
        } catch let error as TemplateError {
            throw error.dpoError(source: source)
        }
    }
}

// The parsed program is immutable and each render builds its own evaluator, so one template can be
// shared and rendered from several threads.
extension ChatTemplate: @unchecked Sendable {}
