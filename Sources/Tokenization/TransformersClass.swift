import DPOSupport
import Foundation

extension Tokenizer {
    /// The tokenizer class transformers 5.24's `AutoTokenizer` loads a directory with, and what that
    /// class changes in tokenizer.json's pipeline. TRL tokenizes with that class, so dpo-dist follows it.
    ///
    /// `TokenizersBackend` (`PreTrainedTokenizerFast`) runs tokenizer.json as written. Some classes
    /// build a pipeline of their own from the file's vocab and merges (`__init__` in their
    /// `tokenization_*.py`); the file's normalizer, pre-tokenizer and decoder are then not used, and
    /// neither are its added-token flags' defaults, while its post-processor is (see `apply`).
    enum TransformersClass: Equatable {
        /// tokenizer.json as written.
        case file
        /// `LlamaTokenizer` (Llama 2, Mistral, Phi-3, TinyLlama): no normalizer, Metaspace("▁", split
        /// false, "first" — "always" with `legacy: true`, "never" without `add_prefix_space`), BPE with
        /// byte_fallback and fuse_unk and no unk token; decoder Replace("▁", " "), ByteFallback, Fuse and
        /// Strip(" ", 1, 0) (only with `add_prefix_space`).
        case llama(addPrefixSpace: Bool, legacy: Bool)
        /// `GPT2Tokenizer`, `CodeGenTokenizer`, `WhisperTokenizer`, and with `nfc` `GPTNeoXTokenizer`:
        /// GPT-2's ByteLevel pre-tokenizer (its regex) and decoder, no byte_fallback, no unk token.
        case gpt2(addPrefixSpace: Bool, nfc: Bool)
        /// `Qwen2Tokenizer`: NFC, Qwen2's split regex, then ByteLevel without its regex.
        case qwen2(addPrefixSpace: Bool)
        /// `GemmaTokenizer` (Gemma, Gemma 2, Gemma 3): normalizer Replace(" ", "▁"), no prefix space,
        /// pre-tokenizer Split(" ", merged with previous) (which finds no space left), BPE with
        /// byte_fallback and fuse_unk over the class's unk token; decoder Replace("▁", " "),
        /// ByteFallback, Fuse.
        case gemma(unkToken: String)

        // MARK: - Which class

        /// The class, from tokenizer_config.json's `tokenizer_class` (or config.json's) and config.json's
        /// `model_type`, as `AutoTokenizer.from_pretrained` chooses it for a local directory without
        /// remote code. Throws where transformers would build a pipeline dpo-dist does not follow.
        static func resolve(config: [String: JSON]?, configPath: String?, modelConfig: [String: JSON]?,
                            modelConfigPath: String?, tokenizerJSON: Data) throws -> (TransformersClass, name: String) {
            let declared = config?["tokenizer_class"]?.string ?? modelConfig?["tokenizer_class"]?.string
            let declaredPath = config?["tokenizer_class"]?.string != nil ? configPath : modelConfigPath
            let modelType = modelConfig?["model_type"]?.string.flatMap { $0.isEmpty ? nil : $0 }
            let hub = declared.map(withoutFast)

            // A "LlamaTokenizer" whose tokenizer.json is byte-level (Llama 3 repositories that say so)
            // loads as TokenizersBackend: LlamaTokenizer would force Metaspace on it.
            if hub == "LlamaTokenizer", !(modelType.map(incorrectHubClass.contains) ?? false),
               tokenizerJSON.range(of: Data(#""ByteLevel""#.utf8)) != nil {
                return (.file, "TokenizersBackend")
            }
            // With a config.json whose model type registers another class than the declared one.
            if let hub, let modelType {
                guard let registered = registeredClass[modelType] else {
                    // A class that runs the file stays that unless the model type overrides declared classes.
                    if backendClasses.contains(hub), !incorrectHubClass.contains(modelType) { return (.file, "TokenizersBackend") }
                    throw DPOError.file(modelConfigPath ?? "config.json", "model_type \"\(modelType)\" with tokenizer_class \"\(declared!)\": dpo-dist does not know which tokenizer class transformers 5.24 picks for this model type (it knows \(registeredClass.keys.sorted().joined(separator: ", ")))")
                }
                if let registered, registered != hub {
                    guard !backendClasses.contains(registered) else { return (.file, "TokenizersBackend") }
                    // Here transformers takes `registered` for the model types of incorrectHubClass
                    // (qwen2: any declared class becomes Qwen2Tokenizer). dpo-dist keeps the declared
                    // class: for Qwen's own files both pipelines are the same, and the test fixtures'
                    // qwen2 model was tokenized for TRL with its file's (README, "Tokenizers").
                    return try named(hub, declaredPath: declaredPath, config: config)
                }
            }
            if let hub {
                return try named(hub, declaredPath: declaredPath, config: config)
            }
            if let modelType {
                guard let registered = registeredClass[modelType] else {
                    throw DPOError.file(modelConfigPath ?? "config.json", "model_type \"\(modelType)\" and no tokenizer_class: dpo-dist does not know which tokenizer class transformers 5.24 picks for this model type; name it in tokenizer_config.json (\"tokenizer_class\": \"PreTrainedTokenizerFast\" runs tokenizer.json as written)")
                }
                if let registered { return try named(registered, declaredPath: declaredPath, config: config) }
            }
            return (.file, "TokenizersBackend")
        }

        private static func withoutFast(_ name: String) -> String {
            name.hasSuffix("Fast") && name != "PreTrainedTokenizerFast" ? String(name.dropLast(4)) : name
        }

        /// A class by name, and the name of the class it is. A name transformers does not know, and
        /// `PreTrainedTokenizerFast`, load as TokenizersBackend.
        private static func named(_ name: String, declaredPath: String?, config: [String: JSON]?) throws -> (TransformersClass, name: String) {
            let addPrefixSpace = config?["add_prefix_space"]?.bool
            switch name {
            case "LlamaTokenizer":
                return (.llama(addPrefixSpace: addPrefixSpace ?? true, legacy: config?["legacy"]?.bool ?? false), name)
            case "GPT2Tokenizer", "CodeGenTokenizer", "WhisperTokenizer":
                return (.gpt2(addPrefixSpace: addPrefixSpace ?? false, nfc: false), name)
            case "GPTNeoXTokenizer":
                return (.gpt2(addPrefixSpace: addPrefixSpace ?? false, nfc: true), name)
            case "Qwen2Tokenizer":
                return (.qwen2(addPrefixSpace: addPrefixSpace ?? false), name)
            case "GemmaTokenizer":
                let unk = config?["unk_token"]?.string ?? config?["unk_token"]?["content"]?.string ?? "<unk>"
                return (.gemma(unkToken: unk), name)
            default:
                if ownPipelineClasses.contains(name) {
                    throw DPOError.file(declaredPath ?? "tokenizer_config.json", "tokenizer_class \"\(name)\": transformers 5.24 builds this class's own pipeline instead of tokenizer.json's, and dpo-dist does not follow it (it follows LlamaTokenizer, GemmaTokenizer, GPT2Tokenizer, CodeGenTokenizer, WhisperTokenizer, GPTNeoXTokenizer, Qwen2Tokenizer and PreTrainedTokenizerFast)")
                }
                return (.file, "TokenizersBackend")
            }
        }

        /// Classes that run tokenizer.json as written.
        private static let backendClasses: Set<String> = ["TokenizersBackend", "PreTrainedTokenizerFast", "PythonBackend", "MistralCommonBackend"]

        /// transformers 5.24's TOKENIZER_MAPPING_NAMES for the model types dpo-dist trains or has tested
        /// tokenizers of (nil: none registered, so the declared class is used).
        private static let registeredClass: [String: String?] = [
            "llama": nil, "mistral": "TokenizersBackend", "mixtral": "TokenizersBackend", "ministral": "TokenizersBackend",
            "qwen2": "Qwen2Tokenizer", "qwen2_moe": "Qwen2Tokenizer", "qwen3": "Qwen2Tokenizer", "qwen3_moe": "Qwen2Tokenizer",
            "phi": "GPT2Tokenizer", "phi3": "TokenizersBackend", "phimoe": "TokenizersBackend",
            "gemma": "GemmaTokenizer", "gemma2": "GemmaTokenizer", "gemma3": "GemmaTokenizer", "gemma3_text": "GemmaTokenizer",
            "olmo": "GPTNeoXTokenizer", "olmo2": "TokenizersBackend", "olmo3": "TokenizersBackend", "smollm3": nil,
            "gpt2": "GPT2Tokenizer", "gpt_neox": "GPTNeoXTokenizer", "falcon": nil, "codegen": "GPT2Tokenizer",
            "whisper": "WhisperTokenizer", "starcoder2": "GPT2Tokenizer", "stablelm": "TokenizersBackend",
            "granite": "TokenizersBackend",
        ]

        /// transformers 5.24's MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS: model types whose declared class
        /// is ignored for the registered one.
        private static let incorrectHubClass: Set<String> = [
            "arctic", "camembertv2-base", "chatlm", "cohere_asr", "ernie4_5", "ernie4_5_moe", "fuyu", "h2ovl_chat",
            "hyperclovax", "hyperclovax_vision_v2", "hyperclovax_vlm", "internlm2", "internlm3", "iquestcoder", "jamba",
            "llava", "llava_next", "minicpm3", "minicpmv", "minimax_m2", "modernbert", "modernbert-decoder", "molmo",
            "molmo2", "nemotron", "nvfp4", "opencua", "openvla", "paddleocr_vl", "phi3", "phi3_v", "phimoe", "qwen2",
            "qwen3_5", "qwen3_5_moe", "qwen3_5_moe_text", "qwen4_exp", "siglip2", "smolvlm", "step3_vl", "vipllava",
        ]

        /// The other tokenizer classes of transformers 5.24 that do not run tokenizer.json as written:
        /// TokenizersBackend subclasses with their own `__init__`, and the Python (slow) tokenizers.
        private static let ownPipelineClasses: Set<String> = [
            "AlbertTokenizer", "BarthezTokenizer", "BertTokenizer", "BigBirdTokenizer", "BlenderbotTokenizer",
            "CLIPTokenizer", "CamembertTokenizer", "CodeLlamaTokenizer", "CohereTokenizer", "DebertaTokenizer",
            "DebertaV2Tokenizer", "EsmcTokenizer", "FunnelTokenizer", "HerbertTokenizer",
            "LasrTokenizer", "LayoutLMv2Tokenizer", "LayoutLMv3Tokenizer", "LayoutXLMTokenizer", "LukeTokenizer",
            "MBart50Tokenizer", "MBartTokenizer", "MPNetTokenizer", "MarkupLMTokenizer", "NllbTokenizer",
            "NougatTokenizer", "OpenAIGPTTokenizer", "PegasusTokenizer", "Qwen3_5Tokenizer", "ReformerTokenizer",
            "RemBertTokenizer", "RoFormerTokenizer", "RobertaTokenizer", "SeamlessM4TTokenizer", "Siglip2Tokenizer",
            "SplinterTokenizer", "T5Tokenizer", "UdopTokenizer", "VideoPrismTokenizer", "XGLMTokenizer",
            "XLMRobertaTokenizer", "XLNetTokenizer",
            "BertJapaneseTokenizer", "BertweetTokenizer", "BioGptTokenizer", "BlenderbotSmallTokenizer", "ByT5Tokenizer",
            "CTRLTokenizer", "CanineTokenizer", "ClvpTokenizer", "CpmAntTokenizer", "DPRQuestionEncoderTokenizer",
            "DiaTokenizer", "EsmTokenizer", "FNetTokenizer", "FSMTTokenizer", "FlaubertTokenizer",
            "GPTNeoXJapaneseTokenizer", "MgpstrTokenizer", "MyT5Tokenizer", "ParakeetTokenizer", "PerceiverTokenizer",
            "PhobertTokenizer", "ProphetNetTokenizer", "RagTokenizer", "RoCBertTokenizer", "TapasTokenizer",
            "VitsTokenizer", "Wav2Vec2CTCTokenizer", "Wav2Vec2PhonemeCTCTokenizer", "XLMTokenizer",
        ]

        // MARK: - What the class changes

        /// Whether the class replaces the file's normalizer, pre-tokenizer and decoder.
        var replacesPipeline: Bool { self != .file }

        /// The class's BPE options over the file's vocab and merges.
        func model(_ schema: BPESchema) -> BPESchema {
            var model = schema
            switch self {
            case .file:
                return schema
            case .llama, .gemma:
                // LlamaTokenizer passes no unk token, GemmaTokenizer its own.
                if case .gemma(let unk) = self { model.unkToken = unk } else { model.unkToken = nil }
                model.fuseUnk = true
                model.byteFallback = true
                model.continuingSubwordPrefix = nil
                model.endOfWordSuffix = nil
            case .gpt2, .qwen2:
                model.unkToken = nil
                model.fuseUnk = false
                model.byteFallback = false
                // Empty, as these classes pass them: the same as none.
                model.continuingSubwordPrefix = nil
                model.endOfWordSuffix = nil
            }
            model.ignoreMerges = false
            return model
        }

        /// The normalizer, pre-tokenizer and decoder the class builds.
        func pipeline() throws -> (Normalizer?, PreTokenizer?, TokenDecoder?) {
            let section = "pre_tokenizer"
            switch self {
            case .file:
                return (nil, nil, nil)
            case .llama(let addPrefixSpace, let legacy):
                let scheme: PreTokenizer.PrependScheme = addPrefixSpace ? (legacy ? .always : .first) : .never
                var decoders: [TokenDecoder] = [.replace(.literal(Array("▁".utf8)), content: " "), .byteFallback, .fuse]
                if addPrefixSpace { decoders.append(.strip(content: " ", start: 1, stop: 0)) }
                return (nil, .metaspace(replacement: "▁", prependScheme: scheme, split: false), .sequence(decoders))
            case .gpt2(let addPrefixSpace, let nfc):
                return (nfc ? .nfc : nil,
                        .byteLevel(addPrefixSpace: addPrefixSpace, regex: try SplitPattern.compile(ByteLevel.gpt2Pattern, section: section)),
                        .byteLevel)
            case .gemma:
                return (.replace(.literal(Array(" ".utf8)), content: "▁"),
                        .split(.character { $0 == " " }, behavior: .mergedWithPrevious, invert: false),
                        .sequence([.replace(.literal(Array("▁".utf8)), content: " "), .byteFallback, .fuse]))
            case .qwen2(let addPrefixSpace):
                return (.nfc,
                        .sequence([.split(try SplitPattern.compile(Self.qwen2Pattern, section: section), behavior: .isolated, invert: false),
                                   .byteLevel(addPrefixSpace: addPrefixSpace, regex: nil)]),
                        .byteLevel)
            }
        }

        /// transformers' qwen2 PRETOKENIZE_REGEX.
        static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    }
}
