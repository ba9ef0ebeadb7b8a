import DPOTestSupport
import Foundation
import XCTest
@testable import DPOSupport
@testable import Tokenization

/// Checks the tokenizer against ids written by Hugging Face's libraries
/// (tools/make_tokenizer_fixtures.py): three tiny tokenizers committed under
/// Fixtures/tokenizers/ (the `tokenizers` library's ids), and the real tokenizers of published
/// models, read from ../shared/tokenizers beside the repository (transformers' AutoTokenizer ids,
/// what TRL tokenizes with).
final class TokenizerTests: XCTestCase {
    // MARK: - Fixtures from `tokenizers`

    func testTinyBPE() throws { try checkFixture("tiny-bpe") }
    func testTinyBPELlama3Style() throws { try checkFixture("tiny-bpe-llama3") }
    func testTinyBPEUnknownAndSplitBehaviors() throws { try checkFixture("tiny-bpe-unk") }
    func testTinySentencePieceFirstSplit() throws { try checkFixture("tiny-spm-first") }
    func testTinySentencePieceAlwaysUnsplit() throws { try checkFixture("tiny-spm-always") }
    func testTinySentencePieceNeverSplit() throws { try checkFixture("tiny-spm-never") }
    /// tokenizer_class GemmaTokenizer, which replaces the file's Metaspace by Replace(" ", "▁").
    func testTinyGemmaFollowsGemmaTokenizer() throws { try checkFixture("tiny-gemma") }
    func testGPT2() throws { try checkFixture("gpt2") }
    func testGPTNeoX20B() throws { try checkFixture("gpt-neox-20b") }
    func testPhi2() throws { try checkFixture("phi-2") }
    func testFalcon7B() throws { try checkFixture("falcon-7b") }
    func testOLMo2() throws { try checkFixture("olmo2-dolma2") }
    func testSmolLM2() throws { try checkFixture("smollm2-135m") }
    func testWhisperLargeV3() throws { try checkFixture("whisper-large-v3") }

    // The second set: the models people fine-tune now, and SentencePiece-style BPE.
    func testQwen3() throws { try checkFixture("qwen3") }
    func testLlama32() throws { try checkFixture("llama3.2") }
    func testSmolLM3() throws { try checkFixture("smollm3") }
    func testPhi4MiniFollowsGPT2Tokenizer() throws { try checkFixture("phi-4-mini") }
    func testLlama2FollowsLlamaTokenizer() throws { try checkFixture("llama2") }
    func testMistral7BFollowsLlamaTokenizer() throws { try checkFixture("mistral-7b-v0.1") }
    func testPhi3MiniFollowsLlamaTokenizer() throws { try checkFixture("phi-3-mini") }

    // Beside a config.json, as in a model directory: the model type can change AutoTokenizer's class.
    func testPhi3MiniInAPhi3ModelDirectoryFollowsTheFile() throws { try checkFixture("phi-3-mini@phi3") }
    func testMistral7BInAMistralModelDirectoryFollowsTheFile() throws { try checkFixture("mistral-7b-v0.1@mistral") }
    func testLlama2InALlamaModelDirectoryFollowsLlamaTokenizer() throws { try checkFixture("llama2@llama") }

    /// Found by fuzz/run (FuzzTokenizerJSON): a vocab id of trillions made the id table an
    /// allocation the process could not survive. Ids are bounded by the vocab and the added tokens.
    func testAHugeVocabIDIsRefusedBeforeAnyAllocation() throws {
        let dir = Fixtures.temporaryDirectory("huge-id")
        try #"{"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null, "model": {"type": "BPE", "vocab": {"a": 0, "b": 5330000000000}, "merges": []}}"#
            .write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains("token \"b\" has id 5330000000000, outside 0..<2"), "\(error)")
        }
    }

    func testEveryFixtureHasATest() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: TokenizerPaths.fixtures)
            .filter { $0.hasSuffix(".ids.json") }.map { String($0.dropLast(".ids.json".count)) }
        XCTAssertEqual(Set(names), Set(TokenizerPaths.tinyNames + TokenizerPaths.realNames + TokenizerPaths.withModelType.map(\.name)))
    }

    // MARK: - SentencePiece-style BPE

    /// Llama 2's vocab holds six pairs of canonically equivalent tokens, which Swift Strings (and so
    /// a [String: Int] decoded by JSONDecoder) would take for one: each keeps its own id.
    func testCanonicallyEquivalentVocabTokensKeepTheirOwnIDs() throws {
        let tokenizer = try loadTokenizer("llama2")
        let oxia = try XCTUnwrap(tokenizer.tokenID("\u{1F77}"))
        let tonos = try XCTUnwrap(tokenizer.tokenID("\u{3AF}"))
        XCTAssertNotEqual(oxia, tonos)
        XCTAssertEqual(tokenizer.token(oxia)?.unicodeScalars.map(\.value), [0x1F77])
        XCTAssertEqual(tokenizer.token(tonos)?.unicodeScalars.map(\.value), [0x3AF])
        XCTAssertEqual(tokenizer.vocabSize, 32000)
    }

    /// A character missing from the vocab becomes its UTF-8 bytes as <0xXX> tokens, and they decode back.
    func testByteFallbackEncodesAndDecodesMissingCharacters() throws {
        let tokenizer = try loadTokenizer("llama2")
        let ids = tokenizer.encode("𓀀", addSpecialTokens: false)
        XCTAssertEqual(ids.compactMap { tokenizer.token($0) }, ["▁", "<0xF0>", "<0x93>", "<0x80>", "<0x80>"])
        XCTAssertEqual(tokenizer.decode(ids), "𓀀")
        // Cut between its bytes, each byte token left alone is one U+FFFD.
        XCTAssertEqual(tokenizer.decode(Array(ids.prefix(3))), "\u{FFFD}\u{FFFD}")
    }

    func testChatTemplateJinjaBesideAConfigWithoutOne() throws {
        let tokenizer = try loadTokenizer("smollm3")
        let config = try String(contentsOfFile: TokenizerPaths.directory("smollm3") + "/tokenizer_config.json", encoding: .utf8)
        XCTAssertFalse(config.contains("chat_template"), "the case this test is about: the template is only in chat_template.jinja")
        XCTAssertEqual(tokenizer.chatTemplate, try String(contentsOfFile: TokenizerPaths.directory("smollm3") + "/chat_template.jinja", encoding: .utf8))
    }

    func testATokenizerClassWithAPipelineDPODistDoesNotFollowIsRefused() throws {
        let directory = try copyOfShared("llama2", editingConfig: { $0["tokenizer_class"] = "T5Tokenizer" })
        assertThrowsDPOError(try Tokenizer(directory: directory),
                             startsWith: "\(directory)/tokenizer_config.json: tokenizer_class \"T5Tokenizer\": transformers 5.24 builds this class's own pipeline")
        // A name transformers does not know loads as the file states (transformers falls back to TokenizersBackend).
        let unknown = try copyOfShared("llama2", editingConfig: { $0["tokenizer_class"] = "NoSuchTokenizer" })
        XCTAssertEqual(try Tokenizer(directory: unknown).transformersClassName, "TokenizersBackend")
    }

    func testAModelTypeWhoseTokenizerClassIsUnknownIsRefused() throws {
        let directory = try copyOfShared("llama2", modelType: "no_such_model")
        assertThrowsDPOError(try Tokenizer(directory: directory),
                             startsWith: "\(directory)/config.json: model_type \"no_such_model\" with tokenizer_class \"LlamaTokenizer\": dpo-dist does not know")
    }

    // MARK: - What the trainer relies on

    func testEOSStringAppendedToTextIsOneID() throws {
        for name in ["tiny-bpe", "tiny-bpe-llama3", "smollm2-135m", "phi-2", "whisper-large-v3"] {
            let tokenizer = try loadTokenizer(name)
            let eos = try XCTUnwrap(tokenizer.eosToken, name)
            let eosID = try XCTUnwrap(tokenizer.eosTokenID, name)
            for completion in ["The answer is 42.", "ends with a space ", "한국어", ""] {
                let ids = tokenizer.encode(completion + eos, addSpecialTokens: false)
                XCTAssertEqual(ids.last, eosID, "\(name): \(completion + eos)")
                XCTAssertEqual(ids.filter { $0 == eosID }.count, 1, "\(name): \(completion + eos)")
                XCTAssertEqual(Array(ids.dropLast()), tokenizer.encode(completion, addSpecialTokens: false), name)
            }
        }
    }

    func testConfigTokensAndChatTemplate() throws {
        let tiny = try loadTokenizer("tiny-bpe")
        XCTAssertEqual(tiny.eosToken, "<|im_end|>")  // the {"content": ...} form
        XCTAssertEqual(tiny.bosToken, "<|endoftext|>")
        XCTAssertEqual(tiny.padToken, "<|endoftext|>")
        XCTAssertEqual(tiny.eosTokenID, tiny.tokenID("<|im_end|>"))
        XCTAssertEqual(tiny.bosTokenID, 0)
        XCTAssertTrue(tiny.chatTemplate?.hasPrefix("{% for message in messages %}") ?? false)
        XCTAssertEqual(tiny.encode("hi").first, tiny.bosTokenID, "TemplateProcessing adds the BOS")

        let llama3 = try loadTokenizer("tiny-bpe-llama3")
        XCTAssertEqual(llama3.bosToken, "<|im_start|>")
        XCTAssertEqual(llama3.chatTemplate, tiny.chatTemplate, "the template named \"default\" of a list")

        let smol = try loadTokenizer("smollm2-135m")
        XCTAssertEqual(smol.eosToken, "<|im_end|>")
        XCTAssertEqual(smol.eosTokenID, 2)
        XCTAssertEqual(smol.bosTokenID, 1)
        XCTAssertTrue(smol.chatTemplate?.contains("<|im_start|>") ?? false)
        XCTAssertEqual(smol.vocabSize, 49152)

        let gpt2 = try loadTokenizer("gpt2")
        XCTAssertNil(gpt2.eosToken, "gpt2 ships no tokenizer_config.json")
        XCTAssertNil(gpt2.chatTemplate)
        XCTAssertEqual(gpt2.tokenID("<|endoftext|>"), 50256)
        XCTAssertEqual(gpt2.token(50256), "<|endoftext|>")
        XCTAssertEqual(gpt2.tokenID("Ġthe"), 262)
        XCTAssertEqual(gpt2.token(262), "Ġthe")
        XCTAssertNil(gpt2.token(50257))
        XCTAssertNil(gpt2.tokenID("no such token"))

        let whisper = try loadTokenizer("whisper-large-v3")
        XCTAssertEqual(whisper.vocabSize, 51866)
        XCTAssertEqual(whisper.eosTokenID, 50257)
    }

    func testChatTemplateFileTakesPriorityOverTheConfig() throws {
        let directory = URL(fileURLWithPath: try writeTemporary("chat_template.jinja", "{{ messages }}")).deletingLastPathComponent()
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: TokenizerPaths.directory("tiny-bpe") + "/" + name,
                                             toPath: directory.appendingPathComponent(name).path)
        }
        let tokenizer = try Tokenizer(directory: directory.path)
        XCTAssertEqual(tokenizer.chatTemplate, "{{ messages }}")
        XCTAssertEqual(tokenizer.eosToken, "<|im_end|>")
    }

    func testDecodeSkipsSpecialTokensAndUnknownIDs() throws {
        let tokenizer = try loadTokenizer("smollm2-135m")
        let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
        XCTAssertEqual(tokenizer.decode(ids), "<|im_start|>user\nhi<|im_end|>")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), "user\nhi")
        XCTAssertEqual(tokenizer.decode(ids + [1_000_000, -1]), "<|im_start|>user\nhi<|im_end|>")
    }

    func testConcurrentEncodingSharesTheCacheSafely() throws {
        let tokenizer = try loadTokenizer("tiny-bpe")
        let texts = (0 ..< 64).map { "text \($0): The quick brown fox, hello world \($0 * 7919) times. 한국어 \($0 % 5)" }
        let expected = texts.map { tokenizer.encode($0) }
        let fresh = try loadTokenizer("tiny-bpe")
        var results = [[Int]](repeating: [], count: texts.count)
        results.withUnsafeMutableBufferPointer { buffer in
            let slots = buffer
            DispatchQueue.concurrentPerform(iterations: texts.count) { slots[$0] = fresh.encode(texts[$0]) }
        }
        XCTAssertEqual(results, expected)
    }

    // MARK: - Refusals

    func testUnigramModelIsRefusedByName() throws {
        let path = try writeTemporary("tokenizer.json", """
            {"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
             "post_processor": null, "decoder": null,
             "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.5]]}}
            """)
        assertThrowsDPOError(try Tokenizer(tokenizerJSONPath: path),
                             equals: "\(path): unsupported model type \"Unigram\" (only BPE is supported)")
    }

    func testTruncatedJSONIsRefusedNamingTheFile() throws {
        let whole = try String(contentsOfFile: TokenizerPaths.directory("tiny-bpe") + "/tokenizer.json", encoding: .utf8)
        let path = try writeTemporary("tokenizer.json", String(whole.prefix(whole.count / 2)))
        assertThrowsDPOError(try Tokenizer(tokenizerJSONPath: path), startsWith: "\(path): not a valid tokenizer.json")
    }

    func testUnsupportedPipelineStepsAreRefusedByName() throws {
        let whole = try String(contentsOfFile: TokenizerPaths.directory("tiny-bpe") + "/tokenizer.json", encoding: .utf8)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(whole.utf8)) as? [String: Any])
        let cases: [(key: String, value: Any, message: String)] = [
            ("pre_tokenizer", ["type": "WhitespaceSplit"],
             "pre_tokenizer: unsupported type \"WhitespaceSplit\" (supported: ByteLevel, Split, Digits, Punctuation, Metaspace, Sequence)"),
            ("pre_tokenizer", ["type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes", "split": true],
             "pre_tokenizer Metaspace: unknown prepend_scheme \"sometimes\" (first, always or never)"),
            ("normalizer", ["type": "Sequence", "normalizers": [["type": "NFC"], ["type": "Lowercase"]]],
             "normalizer: unsupported type \"Lowercase\" (supported: NFC, Prepend, Replace, Strip, Sequence)"),
            ("normalizer", ["type": "Replace", "pattern": ["String": ""], "content": "x"],
             "normalizer Replace: empty \"pattern\""),
            ("decoder", ["type": "WordPiece", "prefix": "##"],
             "decoder: unsupported type \"WordPiece\" (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)"),
            ("post_processor", ["type": "BertProcessing", "sep": ["[SEP]", 1], "cls": ["[CLS]", 0]],
             "post_processor: unsupported type \"BertProcessing\" (supported: ByteLevel, TemplateProcessing, Sequence)"),
        ]
        for (key, value, message) in cases {
            var edited = json
            edited[key] = value
            let path = try writeTemporary("tokenizer.json", String(decoding: try JSONSerialization.data(withJSONObject: edited), as: UTF8.self))
            assertThrowsDPOError(try Tokenizer(tokenizerJSONPath: path), equals: "\(path): \(message)")
        }
        var wordPiece = json
        wordPiece["model"] = ["type": "WordPiece", "unk_token": "[UNK]", "vocab": ["[UNK]": 0]]
        let path = try writeTemporary("tokenizer.json", String(decoding: try JSONSerialization.data(withJSONObject: wordPiece), as: UTF8.self))
        assertThrowsDPOError(try Tokenizer(tokenizerJSONPath: path),
                             equals: "\(path): unsupported model type \"WordPiece\" (only BPE is supported)")
    }

    func testMissingFileIsRefusedNamingTheFile() {
        let path = NSTemporaryDirectory() + "no-such-dir-\(UUID().uuidString)/tokenizer.json"
        assertThrowsDPOError(try Tokenizer(tokenizerJSONPath: path), startsWith: "\(path): cannot read")
    }

    // MARK: - Speed

    /// Prints load and encode times (debug builds are several times slower than release).
    func testEncodeSpeedOn100KB() throws {
        for name in ["gpt2", "olmo2-dolma2", "llama2"] {
            var start = Date()
            let tokenizer = try loadTokenizer(name)
            let loadSeconds = Date().timeIntervalSince(start)
            let paragraph = "Direct Preference Optimization (DPO) fits a policy to preferences: 한국어 문장, 中文, code `x += 1;`\n\t"
                + "and numbers 3.14159 or 1,234,567. The reference model stays frozen while beta scales the implicit reward.\n"
            let text = String(repeating: paragraph, count: 100_000 / paragraph.utf8.count + 1)
            start = Date()
            let ids = tokenizer.encode(text)
            let encodeSeconds = Date().timeIntervalSince(start)
            print(String(format: "tokenizer speed %@: load %.2f s, encode %d KB -> %d ids in %.3f s",
                         name, loadSeconds, text.utf8.count / 1000, ids.count, encodeSeconds))
            XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), text)
        }
    }

    // MARK: - Helpers

    private func checkFixture(_ name: String) throws {
        let fixture = try TokenizerFixture.load(name)
        let tokenizer = try loadTokenizer(name)
        XCTAssertEqual(tokenizer.vocabSize, fixture.vocabSize, "\(name): vocab size")
        if let className = fixture.transformersClass {
            XCTAssertEqual(tokenizer.transformersClassName, className, "\(name): the class AutoTokenizer chose")
        }
        if let chat = fixture.chat {
            // The template as transformers reads it (chat_template.jinja or the config), rendered by our engine.
            let text = try ChatRendering.render(messages: chat.messages.map { ["role": $0.role, "content": $0.content] },
                                                tokenizer: tokenizer, addGenerationPrompt: false, field: "messages",
                                                fail: { DPOError.file(name, $0) })
            // SmolLM3's template prints today's date (strftime_now): the fixture has the day it was made.
            XCTAssertEqual(withoutTodaysDate(text), withoutTodaysDate(chat.text), "\(name): rendered chat")
            XCTAssertEqual(tokenizer.encode(chat.text, addSpecialTokens: false), chat.ids, "\(name): chat ids")
        }

        var idFailures = 0
        for (index, testCase) in fixture.cases.enumerated() {
            let ids = tokenizer.encode(testCase.text, addSpecialTokens: testCase.addSpecialTokens)
            guard ids != testCase.ids else { continue }
            idFailures += 1
            if idFailures == 1 {
                let firstDifference = zip(ids, testCase.ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(ids.count, testCase.ids.count)
                XCTFail("""
                    \(name) case \(index) add_special_tokens=\(testCase.addSpecialTokens): ids differ at \(firstDifference)
                      text:      \(String(reflecting: testCase.text))
                      expected:  \(testCase.ids)
                      got:       \(ids)
                      tokens:    \(ids.map { tokenizer.token($0) ?? "?" })
                      want:      \(testCase.ids.map { tokenizer.token($0) ?? "?" })
                    """)
            }
        }
        XCTAssertEqual(idFailures, 0, "\(name): \(idFailures) of \(fixture.cases.count) cases differ")

        var decodeFailures = 0
        for entry in fixture.decode {
            let ids = entry.caseIndex.map { fixture.cases[$0].ids } ?? entry.ids ?? []
            let text = tokenizer.decode(ids, skipSpecialTokens: entry.skipSpecialTokens)
            guard text != entry.text else { continue }
            decodeFailures += 1
            if decodeFailures == 1 {
                XCTFail("""
                    \(name) decode of \(ids) skip_special_tokens=\(entry.skipSpecialTokens):
                      expected: \(String(reflecting: entry.text)) \(entry.text.unicodeScalars.map { String($0.value, radix: 16) })
                      got:      \(String(reflecting: text)) \(text.unicodeScalars.map { String($0.value, radix: 16) })
                    """)
            }
        }
        XCTAssertEqual(decodeFailures, 0, "\(name): \(decodeFailures) of \(fixture.decode.count) decodes differ")
    }

    /// `text` with the date after "Today Date: " (as "%d %B %Y") replaced by a placeholder.
    private func withoutTodaysDate(_ text: String) -> String {
        text.replacingOccurrences(of: #"Today Date: \d{2} [A-Z][a-z]+ \d{4}"#, with: "Today Date: <date>",
                                  options: .regularExpression)
    }

    private func loadTokenizer(_ name: String) throws -> Tokenizer {
        if !TokenizerPaths.tinyNames.contains(name) {
            guard FileManager.default.fileExists(atPath: TokenizerPaths.shared) else {
                throw XCTSkip("\(TokenizerPaths.shared) is missing: the real tokenizers live beside the repository, not in it")
            }
        }
        if let variant = TokenizerPaths.withModelType.first(where: { $0.name == name }) {
            return try Tokenizer(directory: try copyOfShared(variant.folder, modelType: variant.modelType))
        }
        return try Tokenizer(directory: TokenizerPaths.directory(name))
    }

    /// A temporary folder with the files of a shared tokenizer (linked, not copied), an edited
    /// tokenizer_config.json if asked, and a config.json of `modelType` if given.
    private func copyOfShared(_ name: String, modelType: String? = nil,
                              editingConfig edit: ((inout [String: Any]) -> Void)? = nil) throws -> String {
        guard FileManager.default.fileExists(atPath: TokenizerPaths.shared) else {
            throw XCTSkip("\(TokenizerPaths.shared) is missing: the real tokenizers live beside the repository, not in it")
        }
        let source = TokenizerPaths.directory(name)
        let directory = Fixtures.temporaryDirectory("dpo-dist-tokenizer")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        for entry in try FileManager.default.contentsOfDirectory(atPath: source) {
            if entry == "tokenizer_config.json", let edit {
                let data = try Data(contentsOf: URL(fileURLWithPath: source + "/" + entry))
                var config = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
                edit(&config)
                try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/" + entry))
            } else {
                try FileManager.default.createSymbolicLink(atPath: directory + "/" + entry, withDestinationPath: source + "/" + entry)
            }
        }
        if let modelType {
            try #"{"model_type": "\#(modelType)"}"#.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        }
        return directory
    }

    private func writeTemporary(_ fileName: String, _ contents: String) throws -> String {
        let directory = NSTemporaryDirectory() + "dpo-dist-tokenizer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + fileName
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func assertThrowsDPOError(_ expression: @autoclosure () throws -> Tokenizer, equals expected: String? = nil,
                                      startsWith prefix: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try expression()
            XCTFail("expected a DPOError", file: file, line: line)
        } catch let error as DPOError {
            if let expected { XCTAssertEqual(error.message, expected, file: file, line: line) }
            if let prefix {
                XCTAssertTrue(error.message.hasPrefix(prefix), "\(error.message) does not start with \(prefix)", file: file, line: line)
            }
            XCTAssertFalse(error.message.contains("\n"), "one line: \(error.message)", file: file, line: line)
            print("refused as expected: \(error.message)")
        } catch {
            XCTFail("expected a DPOError, got \(error)", file: file, line: line)
        }
    }
}

private enum TokenizerPaths {
    static let fixtures = Fixtures.root + "/tokenizers"
    static let shared = Fixtures.sharedTokenizers
    static let tinyNames = ["tiny-bpe", "tiny-bpe-llama3", "tiny-bpe-unk", "tiny-spm-first", "tiny-spm-always", "tiny-spm-never",
                                   "tiny-gemma"]
    static let realNames = ["falcon-7b", "gpt-neox-20b", "gpt2", "olmo2-dolma2", "phi-2", "smollm2-135m", "whisper-large-v3",
                            "qwen3", "llama3.2", "smollm3", "phi-4-mini", "llama2", "mistral-7b-v0.1", "phi-3-mini"]
    /// Fixtures of a shared folder with a config.json of a model type beside it: "<folder>@<model_type>".
    static let withModelType = [("phi-3-mini", "phi3"), ("mistral-7b-v0.1", "mistral"), ("llama2", "llama")]
        .map { (name: "\($0)@\($1)", folder: $0, modelType: $1) }

    static func directory(_ name: String) -> String {
        tinyNames.contains(name) ? fixtures + "/" + name : shared + "/" + name
    }
}

/// <name>.ids.json as tools/make_tokenizer_fixtures.py writes it.
private struct TokenizerFixture: Decodable {
    struct Case: Decodable {
        let text: String
        let addSpecialTokens: Bool
        let ids: [Int]
        enum CodingKeys: String, CodingKey { case text, addSpecialTokens = "add_special_tokens", ids }
    }

    /// Decodes either the ids of case `caseIndex` or the ids given.
    struct Decode: Decodable {
        let caseIndex: Int?
        let ids: [Int]?
        let skipSpecialTokens: Bool
        let text: String
        enum CodingKeys: String, CodingKey { case caseIndex = "case", ids, skipSpecialTokens = "skip_special_tokens", text }
    }

    /// A conversation rendered by transformers' apply_chat_template, and its ids.
    struct Chat: Decodable {
        struct Message: Decodable { let role: String; let content: String }
        let messages: [Message]
        let text: String
        let ids: [Int]
    }

    let tokenizer: String
    let vocabSize: Int
    let cases: [Case]
    let decode: [Decode]
    /// The class AutoTokenizer loaded (real tokenizers only).
    let transformersClass: String?
    let chat: Chat?
    enum CodingKeys: String, CodingKey {
        case tokenizer, vocabSize = "vocab_size", cases, decode, transformersClass = "transformers_class", chat
    }

    static func load(_ name: String) throws -> TokenizerFixture {
        let url = URL(fileURLWithPath: TokenizerPaths.fixtures).appendingPathComponent("\(name).ids.json")
        return try JSONDecoder().decode(TokenizerFixture.self, from: Data(contentsOf: url))
    }
}
