import Foundation

extension Tokenizer {
    /// A schema problem found while reading tokenizer.json; the loader prefixes the file path.
    struct SchemaError: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// A JSON value, for the sections of tokenizer.json whose shape depends on their "type" key.
    enum JSON: Decodable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([JSON])
        case object([String: JSON])

        init(from decoder: Swift.Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Double.self) {
                self = .number(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([JSON].self) {
                self = .array(value)
            } else {
                self = .object(try container.decode([String: JSON].self))
            }
        }

        subscript(key: String) -> JSON? {
            if case .object(let members) = self { return members[key] }
            return nil
        }

        var isNull: Bool { if case .null = self { return true } else { return false } }
        var string: String? { if case .string(let value) = self { return value } else { return nil } }
        var bool: Bool? { if case .bool(let value) = self { return value } else { return nil } }
        var array: [JSON]? { if case .array(let value) = self { return value } else { return nil } }
        var object: [String: JSON]? { if case .object(let value) = self { return value } else { return nil } }
        var int: Int? {
            if case .number(let value) = self, let exact = Int(exactly: value) { return exact }
            return nil
        }

        /// The "type" of a typed section, e.g. "ByteLevel".
        func typeName(section: String) throws -> String {
            guard let type = self["type"]?.string else { throw SchemaError("\(section): missing \"type\"") }
            return type
        }

        func requiredBool(_ key: String, section: String) throws -> Bool {
            guard let value = self[key]?.bool else { throw SchemaError("\(section): missing boolean \"\(key)\"") }
            return value
        }

        func requiredArray(_ key: String, section: String) throws -> [JSON] {
            guard let value = self[key]?.array else { throw SchemaError("\(section): missing list \"\(key)\"") }
            return value
        }
    }

    /// The top level of tokenizer.json. `truncation` and `padding` are not read: `transformers`
    /// overrides both on every call, and the trainer truncates on its own.
    struct FileSchema: Decodable {
        let addedTokens: [AddedToken]
        let normalizer: JSON?
        let preTokenizer: JSON?
        let postProcessor: JSON?
        let decoder: JSON?
        let model: BPESchema

        enum CodingKeys: String, CodingKey {
            case version, addedTokens = "added_tokens", normalizer, preTokenizer = "pre_tokenizer"
            case postProcessor = "post_processor", decoder, model
        }

        init(from decoder: Swift.Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let version = try container.decodeIfPresent(String.self, forKey: .version), version != "1.0" {
                throw SchemaError("unknown tokenizer.json version \"\(version)\" (tokenizers reads 1.0)")
            }
            addedTokens = try container.decodeIfPresent([AddedToken].self, forKey: .addedTokens) ?? []
            normalizer = try container.decodeIfPresent(JSON.self, forKey: .normalizer)
            preTokenizer = try container.decodeIfPresent(JSON.self, forKey: .preTokenizer)
            postProcessor = try container.decodeIfPresent(JSON.self, forKey: .postProcessor)
            self.decoder = try container.decodeIfPresent(JSON.self, forKey: .decoder)
            model = try container.decode(BPESchema.self, forKey: .model)
        }
    }

    /// A token of "added_tokens": matched in the text before anything else, and never split. Absent
    /// flags take the `tokenizers` defaults. Its "id" in the file is not read: `tokenizers` assigns
    /// added-token ids itself when it loads the file (see Tokenizer.init), and so does `id` here.
    struct AddedToken: Decodable {
        var id = 0
        let content: String
        let singleWord: Bool
        let lstrip: Bool
        let rstrip: Bool
        let normalized: Bool
        let special: Bool

        enum CodingKeys: String, CodingKey {
            case content, singleWord = "single_word", lstrip, rstrip, normalized, special
        }

        init(from decoder: Swift.Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            content = try container.decode(String.self, forKey: .content)
            special = try container.decodeIfPresent(Bool.self, forKey: .special) ?? false
            singleWord = try container.decodeIfPresent(Bool.self, forKey: .singleWord) ?? false
            lstrip = try container.decodeIfPresent(Bool.self, forKey: .lstrip) ?? false
            rstrip = try container.decodeIfPresent(Bool.self, forKey: .rstrip) ?? false
            normalized = try container.decodeIfPresent(Bool.self, forKey: .normalized) ?? !special
        }
    }

    /// The "model" section. The type is checked before anything else is decoded, so a Unigram or
    /// WordPiece file is refused by name rather than with a confusing shape error about its vocab.
    struct BPESchema: Decodable {
        // The vocab is read by VocabEntries: a decoded [String: Int] would merge canonically equivalent tokens.
        let merges: [(String, String)]
        // The options below are `var`: a transformers tokenizer class may rebuild the model with its own
        // (TransformersClass.apply).
        var unkToken: String?
        var fuseUnk: Bool
        /// A character missing from the vocab becomes its UTF-8 bytes as `<0xXX>` tokens (SentencePiece style).
        var byteFallback: Bool
        var ignoreMerges: Bool
        var continuingSubwordPrefix: String?
        var endOfWordSuffix: String?

        enum CodingKeys: String, CodingKey {
            case type, vocab, merges, dropout, unkToken = "unk_token", fuseUnk = "fuse_unk"
            case byteFallback = "byte_fallback", ignoreMerges = "ignore_merges"
            case continuingSubwordPrefix = "continuing_subword_prefix", endOfWordSuffix = "end_of_word_suffix"
        }

        init(from decoder: Swift.Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // Files written by old versions of `tokenizers` have no model type; BPE is the one with merges.
            let type = try container.decodeIfPresent(String.self, forKey: .type)
                ?? (container.contains(.merges) ? "BPE" : "unknown")
            guard type == "BPE" else {
                throw SchemaError("unsupported model type \"\(type)\" (only BPE is supported)")
            }
            if let dropout = try container.decodeIfPresent(Double.self, forKey: .dropout), dropout > 0 {
                throw SchemaError("model: BPE dropout \(dropout) is not supported (encoding would be random)")
            }
            guard container.contains(.vocab) else { throw SchemaError("model: missing \"vocab\"") }
            merges = try Self.decodeMerges(container)
            unkToken = try container.decodeIfPresent(String.self, forKey: .unkToken)
            fuseUnk = try container.decodeIfPresent(Bool.self, forKey: .fuseUnk) ?? false
            byteFallback = try container.decodeIfPresent(Bool.self, forKey: .byteFallback) ?? false
            ignoreMerges = try container.decodeIfPresent(Bool.self, forKey: .ignoreMerges) ?? false
            continuingSubwordPrefix = try container.decodeIfPresent(String.self, forKey: .continuingSubwordPrefix)
            endOfWordSuffix = try container.decodeIfPresent(String.self, forKey: .endOfWordSuffix)
        }

        /// Merges come as `["a", "b"]` pairs (tokenizers >= 0.20) or as legacy `"a b"` lines.
        private static func decodeMerges(_ container: KeyedDecodingContainer<CodingKeys>) throws -> [(String, String)] {
            if let pairs = try? container.decode([[String]].self, forKey: .merges) {
                return try pairs.enumerated().map { index, pair in
                    guard pair.count == 2 else { throw SchemaError("model: merge \(index) is not a pair: \(pair)") }
                    return (pair[0], pair[1])
                }
            }
            let lines = try container.decode([String].self, forKey: .merges).filter { !$0.hasPrefix("#version") }
            return try lines.enumerated().map { index, line in
                // Split on the space byte: a Character split would keep " " + combining mark together.
                let parts = Array(line.utf8).split(separator: 0x20, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw SchemaError("model: merge \(index) is not \"a b\": \"\(line)\"") }
                return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self))
            }
        }
    }
}
