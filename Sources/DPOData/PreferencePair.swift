import ChatTemplates
import Foundation

/// One preference example: a prompt and two completions, the chosen one preferred.
public struct PreferencePair: Equatable, Sendable {
    public var prompt: String
    public var chosen: String
    public var rejected: String
    /// 1-based line (JSONL) or element (JSON array) number in the source file, for messages.
    public var line: Int
    /// Conversational rows: the messages, rendered with the model's chat template when tokenized.
    /// `prompt`/`chosen`/`rejected` then hold the messages' contents joined, for messages and checks.
    public var conversation: Conversation?

    public struct Conversation: Equatable, Sendable {
        public var prompt: [ChatMessage]
        public var chosen: [ChatMessage]
        public var rejected: [ChatMessage]
    }

    public init(prompt: String, chosen: String, rejected: String, line: Int = 0) {
        self.prompt = prompt; self.chosen = chosen; self.rejected = rejected; self.line = line
    }
}
