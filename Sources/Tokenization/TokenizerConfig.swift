import DPOSupport
import Foundation

extension Tokenizer {
    /// The parts of tokenizer_config.json that training needs.
    struct TokenizerConfig {
        let eosToken: String?
        let bosToken: String?
        let padToken: String?
        let chatTemplate: String?
        /// Every key, for the tokenizer class and its options (TransformersClass).
        let json: [String: JSON]

        init(path: String) throws {
            let object = try Self.readObject(path)
            let json = JSON.object(object)
            self.json = object
            // A special token is written as a string or as an AddedToken object {"content": ...}.
            func specialToken(_ key: String) -> String? {
                json[key]?.string ?? json[key]?["content"]?.string
            }
            eosToken = specialToken("eos_token")
            bosToken = specialToken("bos_token")
            padToken = specialToken("pad_token")
            // Several named templates are a list of {name, template}; the default one is "default".
            if let list = json["chat_template"]?.array {
                chatTemplate = list.first { $0["name"]?.string == "default" }?["template"]?.string
            } else {
                chatTemplate = json["chat_template"]?.string
            }
        }

        /// A JSON file whose top level is an object (tokenizer_config.json, config.json).
        static func readObject(_ path: String) throws -> [String: JSON] {
            let data = try Tokenizer.read(path)
            let json: JSON
            do {
                json = try JSONDecoder().decode(JSON.self, from: data)
            } catch let error as DecodingError {
                throw DPOError.file(path, "not valid JSON: \(Tokenizer.describe(error, in: data))")
            }
            guard let object = json.object else { throw DPOError.file(path, "expected a JSON object") }
            return object
        }
    }
}
