import Foundation

/// One chat turn, as transformers' message dicts `{"role": ..., "content": ...}`.
public struct ChatMessage: Equatable, Sendable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}
