import ChatTemplates
import DPOSupport
import Foundation

/// Conversational rows (`[{"role", "content"}, ...]`) rendered with the model's own chat template,
/// as transformers' `apply_chat_template` does; the text is then tokenized without adding special
/// tokens (the template writes them). A template the engine cannot render is refused by name.
public enum ChatRendering {
    /// Parses a JSON list of messages.
    package static func messages(_ value: Any, field: String, fail: (String) -> DPOError) throws -> [ChatMessage] {
        guard let list = value as? [Any] else { throw fail("field \"\(field)\" must be a list of messages") }
        return try list.enumerated().map { index, item in
            guard let m = item as? [String: Any], let role = m["role"] as? String else {
                throw fail("field \"\(field)\", message \(index + 1): expected {\"role\": ..., \"content\": ...}")
            }
            guard let content = m["content"] as? String else {
                throw fail("field \"\(field)\", message \(index + 1): \"content\" must be a string")
            }
            return ChatMessage(role: role, content: content)
        }
    }

    private static let cache = TemplateCache()

    /// The tokenizer's chat template, parsed once.
    static func template(for tokenizer: Tokenizer) throws -> ChatTemplate {
        guard let source = tokenizer.chatTemplate else {
            throw DPOError.file((tokenizer.path as NSString).deletingLastPathComponent,
                                "conversational data needs a chat_template, and this tokenizer has none")
        }
        let directory = (tokenizer.path as NSString).deletingLastPathComponent
        return try cache.template(source, origin: directory + "/tokenizer_config.json")
    }

    public static func render(_ messages: [ChatMessage], tokenizer: Tokenizer, addGenerationPrompt: Bool) throws -> String {
        try template(for: tokenizer).render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                            bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
    }

    package static func render(messages value: Any, tokenizer: Tokenizer, addGenerationPrompt: Bool, field: String,
                       fail: (String) -> DPOError) throws -> String {
        try render(messages(value, field: field, fail: fail), tokenizer: tokenizer, addGenerationPrompt: addGenerationPrompt)
    }

    /// Parsed templates by source text; training reads one tokenizer, so this stays tiny.
    final class TemplateCache: @unchecked Sendable {
        private var templates: [String: ChatTemplate] = [:]
        private let lock = NSLock()
        func template(_ source: String, origin: String) throws -> ChatTemplate {
            lock.lock(); defer { lock.unlock() }
            if let t = templates[source] { return t }
            let t = try ChatTemplate(source, source: origin)
            templates[source] = t
            return t
        }
    }
}
