import DPOSupport
import Foundation

/// A Hugging Face `tokenizer.json` BPE tokenizer (byte-level, as GPT-2, Llama 3, Qwen2/3, SmolLM,
/// Phi-4, GPT-NeoX, Phi-2, Falcon, OLMo-2 and Whisper use, or SentencePiece-style with byte
/// fallback, as Llama 2, Mistral and Phi-3) whose ids equal those of transformers' AutoTokenizer,
/// plus the special tokens and chat template of `tokenizer_config.json`. AutoTokenizer's class
/// may replace parts of the file's pipeline (TransformersClass); the rest runs as the Python
/// `tokenizers` library runs it.
///
/// Encoding follows `tokenizers` step by step: added tokens are cut out of the raw text, the
/// rest is normalized (then normalized added tokens are cut out), pre-tokenized into words, and
/// each word is merged by the BPE model; with `addSpecialTokens` the post-processor adds its
/// template tokens (a BOS, say). Anything outside that subset is refused when the file loads.
///
/// The stages live in Pipeline/, one file each. All text handling goes through Unicode scalars,
/// UTF-8 or UTF-16, never Swift Characters: a grapheme cluster such as " " + a combining accent is
/// one Character, but `tokenizers` sees a space followed by an accent.
///
/// Thread-safe: the only mutable state is the BPE word cache, which is behind a lock.
public final class Tokenizer: @unchecked Sendable {
    let model: BPEModel
    let addedTokens: [Int: AddedToken]
    let addedTokenIDs: [String: Int]
    /// Added tokens matched in the raw text (`normalized: false`) and in normalized text.
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    /// The transformers class whose pipeline this follows, and its name ("TokenizersBackend" for the file's).
    let transformersClass: TransformersClass
    let transformersClassName: String
    /// The string decoding gives each added token: a normalized token decodes as its normalized form.
    let addedTokenDecodingForms: [Int: String]
    let specialTokenContents: Set<String>

    public let eosToken: String?
    public let bosToken: String?
    public let padToken: String?
    public let chatTemplate: String?
    /// The tokenizer.json this came from (errors about its chat template name it).
    public let path: String

    /// Reads DIR/tokenizer.json and, if present, DIR/tokenizer_config.json. A DIR/chat_template.jinja
    /// (as newer `transformers` saves the template) takes priority over the config's template, as
    /// it does in `transformers`. The tokenizer class (`transformersClass`) is the one transformers
    /// 5.24's AutoTokenizer picks, which may depend on DIR/config.json's `model_type`.
    public convenience init(directory: String) throws {
        let url = URL(fileURLWithPath: directory)
        func ifPresent(_ name: String) -> String? {
            let path = url.appendingPathComponent(name).path
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        try self.init(tokenizerJSONPath: url.appendingPathComponent("tokenizer.json").path,
                      configPath: ifPresent("tokenizer_config.json"),
                      chatTemplatePath: ifPresent("chat_template.jinja"),
                      modelConfigPath: ifPresent("config.json"))
    }

    public convenience init(tokenizerJSONPath: String, configPath: String? = nil) throws {
        try self.init(tokenizerJSONPath: tokenizerJSONPath, configPath: configPath, chatTemplatePath: nil, modelConfigPath: nil)
    }

    init(tokenizerJSONPath: String, configPath: String?, chatTemplatePath: String?, modelConfigPath: String?) throws {
        path = tokenizerJSONPath
        let data = try Self.read(tokenizerJSONPath)
        let config = try configPath.map { try TokenizerConfig(path: $0) }
        let modelConfig = try modelConfigPath.map { try TokenizerConfig.readObject($0) }
        let resolved = try TransformersClass.resolve(config: config?.json, configPath: configPath, modelConfig: modelConfig,
                                                     modelConfigPath: modelConfigPath, tokenizerJSON: data)
        let transformersClass = resolved.0
        self.transformersClass = transformersClass
        transformersClassName = resolved.name
        let file: FileSchema
        do {
            file = try JSONDecoder().decode(FileSchema.self, from: data)
        } catch let error as SchemaError {
            throw DPOError.file(tokenizerJSONPath, error.message)
        } catch let error as DecodingError {
            throw DPOError.file(tokenizerJSONPath, "not a valid tokenizer.json: \(Self.describe(error, in: data))")
        }

        let normalizer: Normalizer?
        var postProcessor: PostProcessor?
        let model: BPEModel
        do {
            model = try BPEModel(transformersClass.model(file.model), entries: try VocabEntries.read(data),
                                 addedTokens: file.addedTokens.count)
            if transformersClass.replacesPipeline {
                let stages = try transformersClass.pipeline()
                (normalizer, preTokenizer, decoder) = (stages.0, stages.1, stages.2)
            } else {
                normalizer = try file.normalizer.flatMap { $0.isNull ? nil : try Normalizer.parse($0) }
                preTokenizer = try file.preTokenizer.flatMap { $0.isNull ? nil : try PreTokenizer.parse($0) }
                decoder = try file.decoder.flatMap { $0.isNull ? nil : try TokenDecoder.parse($0) }
            }
            postProcessor = try file.postProcessor.flatMap { $0.isNull ? nil : try PostProcessor.parse($0) }
        } catch let error as SchemaError {
            throw DPOError.file(tokenizerJSONPath, error.message)
        }
        self.model = model
        self.normalizer = normalizer

        // `tokenizers` ignores the ids written in "added_tokens" (it only warns when they differ):
        // a token in the model vocab takes its vocab id, any other the next id after the vocab,
        // in file order. The same rule here keeps the ids equal even for a hand-edited file.
        var nextID = model.entryCount
        var addedTokenIDs: [String: Int] = [:]
        let added = file.addedTokens.filter { !$0.content.isEmpty }.map { schema -> AddedToken in
            let id: Int
            if let known = addedTokenIDs[schema.content] ?? model.id(of: schema.content) {
                id = known
            } else {
                id = nextID
                nextID += 1
            }
            addedTokenIDs[schema.content] = id
            var token = schema
            token.id = id
            return token
        }
        self.addedTokenIDs = addedTokenIDs
        addedTokens = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        specialTokenContents = Set(added.filter(\.special).map(\.content))

        // A normalized token is looked for in normalized text, so it is matched (and decoded)
        // in its normalized form.
        let forms = added.map { $0.normalized ? normalizer?.apply($0.content) ?? $0.content : $0.content }
        rawMatcher = AddedTokenMatcher(zip(forms, added).filter { !$0.1.normalized })
        normalizedMatcher = AddedTokenMatcher(zip(forms, added).filter { $0.1.normalized })
        addedTokenDecodingForms = Dictionary(zip(added.map(\.id), forms), uniquingKeysWith: { _, last in last })

        eosToken = config?.eosToken
        bosToken = config?.bosToken
        padToken = config?.padToken
        // transformers replaces the file's post-processor when the config says add_bos_token or
        // add_eos_token (TokenizersBackend.update_post_processor): BOS and EOS where they are true.
        if let json = config?.json, json["add_bos_token"] != nil || json["add_eos_token"] != nil {
            func id(_ token: String?, _ key: String) -> [Int] {
                guard json[key]?.bool == true, let token, let id = addedTokenIDs[token] ?? model.id(of: token) else { return [] }
                return [id]
            }
            postProcessor = .template([.specialTokens(id(config?.bosToken, "add_bos_token")), .sequence,
                                       .specialTokens(id(config?.eosToken, "add_eos_token"))])
        }
        self.postProcessor = postProcessor
        chatTemplate = try chatTemplatePath.map { String(decoding: try Self.read($0), as: UTF8.self) } ?? config?.chatTemplate
    }

    // MARK: - Encoding and decoding

    /// The ids of `text`, as `tokenizers`' `encode(text, add_special_tokens=...)`. Added tokens in the
    /// text (e.g. an EOS string appended to a completion) become their single ids.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        // Only the text before any added token starts the input (Metaspace's "first" scheme).
        var atStart = true
        for piece in rawMatcher.split(text) {
            switch piece {
            case .token(let id):
                ids.append(id)
            case .text(let raw):
                let normalized = normalizer?.applyKeepingStart(raw) ?? (text: raw, keptStart: true)
                atStart = atStart && normalized.keptStart
                for inner in normalizedMatcher.split(normalized.text) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let text): ids += tokenize(text, atStart: atStart)
                    }
                    atStart = false
                }
            }
            atStart = false
        }
        guard addSpecialTokens, let postProcessor else { return ids }
        return postProcessor.apply(ids)
    }

    /// Pre-tokenizes normalized text that holds no added token, and merges each word.
    private func tokenize(_ text: String, atStart: Bool) -> [Int] {
        let words = preTokenizer?.words(text, atStart: atStart) ?? [text]
        return words.flatMap(model.tokenize)
    }

    /// The text of `ids`, as `tokenizers`' `decode`. Unknown ids are skipped; bytes that are not
    /// valid UTF-8 (a character cut between tokens) become U+FFFD.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let tokens = ids.compactMap { id -> String? in
            guard let token = addedTokenDecodingForms[id] ?? model.token(id) else { return nil }
            return skipSpecialTokens && specialTokenContents.contains(token) ? nil : token
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    // MARK: - Vocabulary

    /// Model vocabulary and added tokens together: the largest id + 1.
    public var vocabSize: Int {
        max(model.tokensByID.count, (addedTokens.keys.max() ?? -1) + 1)
    }

    public func tokenID(_ token: String) -> Int? {
        addedTokenIDs[token] ?? model.id(of: token)
    }

    public func token(_ id: Int) -> String? {
        addedTokens[id]?.content ?? model.token(id)
    }

    public var eosTokenID: Int? { eosToken.flatMap(tokenID) }
    public var bosTokenID: Int? { bosToken.flatMap(tokenID) }

    // MARK: - Files

    static func read(_ path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DPOError.file(path, "cannot read: \(error.localizedDescription)")
        }
    }

    /// A DecodingError in one line, with the JSON path where it happened.
    static func describe(_ error: DecodingError, in data: Data) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }
            return keys.isEmpty ? "" : " at \(keys.joined(separator: "."))"
        }
        switch error {
        case .dataCorrupted(let context):
            return "\(context.debugDescription)\(syntaxErrorDetail(data).map { " (\($0))" } ?? "")\(path(context))"
        case .keyNotFound(let key, let context):
            return "missing key \"\(key.stringValue)\"\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.debugDescription)\(path(context))"
        @unknown default:
            return "\(error)"
        }
    }

    /// Where the JSON syntax is broken: Linux's JSONDecoder does not say, JSONSerialization does.
    private static func syntaxErrorDetail(_ data: Data) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: data)
            return nil
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        }
    }

}
