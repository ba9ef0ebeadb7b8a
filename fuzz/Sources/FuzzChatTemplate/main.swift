import ChatTemplates
import FuzzDriver
import Foundation

// A chat template with this text either parses and renders a short conversation, or throws a
// DPOError naming what it cannot do.
let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: "Hello!"), ChatMessage(role: "user", content: "2+2?")]
fuzz { data in
    guard let template = try? ChatTemplate(String(decoding: data, as: UTF8.self), source: "fuzz") else { return }
    for generation in [false, true] {
        _ = try? template.render(messages: messages, addGenerationPrompt: generation, bosToken: "<s>", eosToken: "</s>",
                                 now: Date(timeIntervalSince1970: 0))
    }
}
