#!/usr/bin/env python3
"""Makes the tokenizer fixtures that Tests/TokenizationTests/TokenizerTests.swift reads.

The expected ids come from Hugging Face's own libraries, so the Swift tokenizer is checked against
the reference implementation, never against itself: for the real tokenizers, transformers'
`AutoTokenizer` (what TRL tokenizes with: it picks a class from tokenizer_config.json, and some
classes replace parts of tokenizer.json's pipeline); for the tiny ones, which have no
tokenizer_class and so load as tokenizer.json states, the `tokenizers` library.

    python tools/make_tokenizer_fixtures.py            # (re)writes Tests/DPOTestSupport/Fixtures/tokenizers/
    python tools/make_tokenizer_fixtures.py llama2     # only the fixtures named

Needs: tokenizers and transformers (5.24 made the committed files; ~/venvs/dpo-dist-tools has them).
Reads the real tokenizers in ../shared/tokenizers/ (a sibling of the repository) and writes, into
Fixtures/tokenizers/:

  tiny-bpe/, tiny-bpe-llama3/, tiny-bpe-unk/   three tiny byte-level BPE tokenizers (tokenizer.json
                                               + tokenizer_config.json) trained here, each
                                               exercising options the real ones do not use
  tiny-spm-first/, -always/, -never/           three tiny SentencePiece-style ones (Metaspace with
                                               each prepend_scheme, split or not, byte fallback
                                               over some bytes, Strip/Replace normalizers)
  tiny-gemma/                                  tokenizer_class GemmaTokenizer over a tiny BPE whose file states a
                                               Metaspace: its ids are AutoTokenizer's (the class rebuilds the pipeline)
  <name>.ids.json                              for each tiny and each real tokenizer: the ids of
                                               every test string with and without special tokens,
                                               and what `decode` returns for them; for the real
                                               ones also the class AutoTokenizer chose and, where
                                               there is a chat template, a rendered conversation
  <name>@<model_type>.ids.json                 the same for a real tokenizer folder with a
                                               config.json of that model_type beside it (made in a
                                               temporary folder): AutoTokenizer's class then
                                               depends on the model type too

The real tokenizers are only read, never copied into the repository.

tiny-bpe, tiny-bpe-llama3 and the tiny-spm ones come out the same on every run. tiny-bpe-unk does not: with a
subword prefix or word suffix, the `tokenizers` trainer breaks ties between equally frequent
pairs in hash order. Any run's tokenizer.json and ids.json agree with each other, which is all the
tests need, so regenerate and commit them together.
"""

import json
import os
import random
import sys
import tempfile

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "Tests", "DPOTestSupport", "Fixtures", "tokenizers")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "tokenizers"))
REAL = ["falcon-7b", "gpt-neox-20b", "gpt2", "olmo2-dolma2", "phi-2", "smollm2-135m", "whisper-large-v3",
        "qwen3", "llama3.2", "smollm3", "phi-4-mini", "llama2", "mistral-7b-v0.1", "phi-3-mini"]
# Real tokenizer folders with a config.json of this model type beside them, as in a model directory.
WITH_MODEL_TYPE = [("phi-3-mini", "phi3"), ("mistral-7b-v0.1", "mistral"), ("llama2", "llama")]

# Llama 3 / cl100k pre-tokenization regex (also OLMo-2's).
CL100K = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")

LONG = " ".join([
    "Direct Preference Optimization trains a policy on pairs of completions, one preferred and one rejected,",
    "without a separate reward model. The loss is -log sigmoid(beta * (delta_chosen - delta_rejected)),",
    "where each delta is log pi_theta(y|x) - log pi_ref(y|x), summed over the completion tokens only.",
    "Typical settings: beta = 0.1, learning rate 5e-7, batch 8, 10,000+ pairs.",
    "다국어 데이터도 같은 방식으로 처리됩니다. 中文数据也一样。 Ça marche aussi en français! 🚀\n\n",
]) * 2

# Every tokenizer encodes every one of these (with and without special tokens); a special-token
# string in a tokenizer that lacks it is plain text, which is worth checking too. The real
# tokenizers also encode LONG.
TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing spaces   ",
    "def add(a, b):\n    return a + b  # sum\n\n\tif x:\n\t\tpass\n",
    "for (int i = 0; i < n; ++i) { s += a[i]; }        // eight spaces before",
    "x" + " " * 24 + "y" + " " * 31 + "z",
    "한국어 문장입니다. 안녕하세요!",
    "中文测试：你好，世界。",
    "日本語のテキスト、カタカナ。",
    "Emoji: 🤗🚀 👩‍👩‍👧 ❤️ 🇰🇷",
    "café naïve résumé Ångström façade",
    "e\u0301 a\u0300 o\u0308 n\u0303 (combining) vs \u00e9 \u00e0 \u00f6 \u00f1",
    "A\u030a\u0301 \u1100\u1161\u11a8 \u212b \u0041\u0308\u0304",
    " \u0301accent after space",
    "tabs\t\there\nnew line\r\nCRLF line\r\n\r\n  \n   end   ",
    "multiple     spaces\t\t\ttabs\n\n\n\nnewlines",
    "trailing space ",
    " ",
    "\n",
    "\t \t",
    "1234567 3.14159 2024-06-01 1,000,000 0.5% \u0663\u0664\u0665 \u00b2\u00bd \u2163",
    "I'm don't WE'LL you've she'd they're It's O'Neil 'quoted' \u2019curly\u2019 'S",
    "Hello<|endoftext|>world",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>",
    "text <|endoftext|> spaced <|endoftext|><|endoftext|> <|endoftext",
    "Answer: 42<|im_end|>",
    "a <mask> b<mask>c   <mask>   d [WORD] x[WORD] [WORD]y hello world! Hello world",
    "<|startoftranscript|><|en|><|transcribe|><|notimestamps|> >>TITLE<< |||PHONE_NUMBER|||",
    "",
    "Punctuation!!! ...?? --- (a) [b] {c} \"quotes\" @user #tag $5 ^_^ ~ \u00bfQu\u00e9? \u00abguillemets\u00bb",
    "URL: https://example.com/path?q=1&x=y#frag email@test.org",
    "mixed123abc456 x2 3x CamelCaseWord snake_case_word __dunder__",
    "\u00a0non-breaking\u00a0space\u3000ideographic\u2028line\u2029para\u000bvt\u000cff\u0085nel",
    "zero\u200bwidth\ufeffbom \u0000nul\u001fctl \u007fdel",
    "abababab aab abc ab ab  ab",
]

# Random mixes of the characters that pre-tokenizers treat differently (Unicode whitespace, marks,
# numbers of every category, astral characters, special-token strings and their prefixes),
# seeded so the fixtures are reproducible.
PIECES = (list("abcXYZ019!?.,'\"-_/<>|") + [" "] * 8 + [
    "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x85", "\xa0", "\u2028", "\u3000", "\u200b", "\ufeff", "\u1680",
    "\x1c", "\x00", "\u0301", "\u0308", "\u20dd", "e\u0301", "\u1100\u1161\u11a8", "é", "ß", "한", "中", "の", "🤗",
    "👩\u200d👧", "\U00020000", "\U0001D400", "٣", "²", "½", "Ⅳ", "①", "’", "«", "—", "'s", "'LL", "don't",
    "<|endoftext|>", "<|im_end|>", "<|endoftext", "<mask>", "[WORD]", "hello world", " " * 24, " " * 31])


def random_text(seed):
    rng = random.Random(seed)
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 30)))


RANDOM_TEXTS = [random_text(seed) for seed in range(1, 21)]

# Partial byte sequences: each id of these decoded on its own shows how invalid UTF-8 is replaced.
# The last ones are byte-fallback tokens in SentencePiece vocabs.
DECODE_EACH = ["한국어 🤗 é", "👩‍👩‍👧 中文", "𓀀 ꙮ 🫠"]

# What SentencePiece-style tokenizers (Metaspace, byte_fallback) and the class overrides change:
# leading whitespace, characters outside the vocab, emoji sequences, text right after a special token.
HARD_TEXTS = [
    "  two leading spaces",
    "\n\nleading newlines, then text",
    "   \n  \t mixed leading whitespace",
    "a" + " " * 16 + "b" + "\n" * 5 + "c\n\n\n",
    "👍🏽 👋🏿 🧑🏻‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 #️⃣ 🫠",
    "今日は良い天気ですね。ひらがな・カタカナ・漢字、ｈａｌｆ－ｗｉｄｔｈ ｶﾀｶﾅ",
    "안녕하세요, 세계! 한국어 형태소 분석은 어렵습니다. ㅋㅋㅋ ㄱㄴㄷ",
    "Z\u0351\u036ba\u0310l\u0367g\u0344o; n\u0303 vs \u00f1; A\u030a vs \u00c5; \u1f77 vs \u03af",
    "0 00 000 0000 12345678901234567890 3.14 -42 1e10 \u0660\u0661\u0662 \u0966\u0967\u0968",
    'def f(x):\n\treturn {"k": [1, 2, 3]}  # ok\n',
    "if (a && b) { return a->b; } // c++\n<div class=\"x\">&nbsp;</div>\nSELECT * FROM t WHERE id = 1;",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ 𓀀 \U0010fffd \u0e01\u0e34\u0e19 \u05e9\u05dc\u05d5\u05dd",
]

# A conversation rendered with each real tokenizer's chat template (tokenize=False), then encoded.
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "안녕? 2+2=?"},
        {"role": "assistant", "content": "4입니다 🙂"}]


def special_texts(tok):
    """Texts around the tokenizer's own added tokens: inside text, right after one, doubled."""
    added = sorted(tok.added_tokens_decoder.items())
    special = [t.content for _, t in added if t.special]
    plain = [t.content for _, t in added if not t.special]
    picked = list(dict.fromkeys(special[:3] + special[-1:] + plain[:2]))
    texts = []
    for s in picked:
        texts += [f"{s}Hello", f"{s} Hello  world", f"{s}\n  x", f"Hello{s}world", f"a {s} b", f"{s}{s}", f" {s}",
                  f"x{s}  {s}y"]
    return texts

CORPUS = [
    "The quick brown fox jumps over the lazy dog. Hello world! hello there, hello again.",
    "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(i)\n",
    "I'm sure we'll see that they're right, and you've said it's fine. Don't worry.",
    "Direct preference optimization compares a chosen and a rejected completion.",
    "Numbers: 1234567890 3.14159 2024 1,000,000. Prices: $5, $10, $25.",
    "ababab abab aab abab aaab abc abc abc",
] * 20


def train_tiny(vocab_size, special_tokens, pre_tokenizer, model, alphabet, corpus, **trainer_options):
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special_tokens,
                                  initial_alphabet=alphabet, show_progress=False, **trainer_options)
    tok.train_from_iterator(corpus, trainer)
    return tok


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def save_tokenizer_dir(name, tokenizer_json, config):
    """Writes a tokenizer folder and returns the loaded `tokenizers` object (which must accept it)."""
    folder = os.path.join(OUT, name)
    write_json(os.path.join(folder, "tokenizer.json"), tokenizer_json)
    write_json(os.path.join(folder, "tokenizer_config.json"), config)
    return Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))


CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def make_tiny_bpe():
    """Plain GPT-2 style byte-level BPE, a BOS template, and added tokens with every matching flag."""
    tok = train_tiny(400, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                     models.BPE(), pre_tokenizers.ByteLevel.alphabet(), CORPUS)
    tok.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", tok.token_to_id("<|endoftext|>"))])
    tok.add_tokens([
        AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False),
        AddedToken("[WORD]", single_word=True, normalized=False),
        AddedToken("hello world", normalized=True),
    ])
    config = {"eos_token": {"content": "<|im_end|>", "lstrip": False, "normalized": False, "rstrip": False,
                            "single_word": False, "special": True, "__type": "AddedToken"},
              "bos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "chat_template": CHATML}
    return json.loads(tok.to_str()), config


def make_tiny_llama3(tiny_json):
    """Llama 3 style: NFC, cl100k Split + ByteLevel without its regex, ignore_merges, merges written
    as "a b" strings, a BOS template inside a Sequence post-processor, a Sequence decoder."""
    t = json.loads(json.dumps(tiny_json))
    t["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
    t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": CL100K}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    model = t["model"]
    model["ignore_merges"] = True
    model["merges"] = [" ".join(pair) for pair in model["merges"]]
    # Whole words that the merges alone would never produce: ignore_merges must emit them as one id.
    # They take ids after the added tokens, which leaves the added tokens' ids in the file stale:
    # `tokenizers` reassigns them on load (vocab size onwards), and the Swift loader must too.
    next_id = 1 + max(list(model["vocab"].values()) + [a["id"] for a in t["added_tokens"]])
    for word in ["Ġxyzzy", "Ġquick", "Ġlazy"]:
        if word not in model["vocab"]:
            model["vocab"][word] = next_id
            next_id += 1
    bos = next(a["id"] for a in t["added_tokens"] if a["content"] == "<|im_start|>")
    t["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|im_start|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [bos], "tokens": ["<|im_start|>"]}}}]}
    t["decoder"] = {"type": "Sequence", "decoders": [{"type": "ByteLevel", "add_prefix_space": True,
                                                       "trim_offsets": True, "use_regex": True}]}
    config = {"eos_token": "<|endoftext|>", "bos_token": {"content": "<|im_start|>"},
              "chat_template": [{"name": "default", "template": CHATML}, {"name": "tool_use", "template": "{{ tools }}"}]}
    return t, config


def make_tiny_unk():
    """An ASCII-only vocabulary with a fused unk token, a subword prefix and word suffix, and a
    pre-tokenizer chain that uses every split behavior and ByteLevel's add_prefix_space."""
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="merged_with_next"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split(pattern="ab", behavior="contiguous"),
        # Can match empty: Oniguruma skips an empty match where the previous match ended.
        pre_tokenizers.Split(pattern=Regex(r"a*"), behavior="merged_with_next"),
        pre_tokenizers.Split(pattern=Regex(r"\s+"), behavior="merged_with_previous"),
        pre_tokenizers.Split(pattern=Regex(r"[A-Z]?[a-z]+|[^a-z]+"), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
    ])
    ascii_corpus = [line for line in CORPUS if line.isascii()]
    tok = train_tiny(300, ["<unk>", "<|endoftext|>"], pre,
                     models.BPE(unk_token="<unk>", fuse_unk=True, continuing_subword_prefix="##",
                                end_of_word_suffix="</w>"),
                     [], ascii_corpus, continuing_subword_prefix="##", end_of_word_suffix="</w>")
    t = json.loads(tok.to_str())
    return t, {"eos_token": "<|endoftext|>"}


def encode_ids(tok, text, add):
    """Ids from a `tokenizers.Tokenizer` or a transformers tokenizer."""
    if isinstance(tok, Tokenizer):
        return tok.encode(text, add_special_tokens=add).ids
    return tok.encode(text, add_special_tokens=add)


def add_byte_tokens(t):
    """Byte tokens for ASCII and for the bytes of é and 한 only: 中, emoji and the like fall back to <unk>."""
    vocab = t["model"]["vocab"]
    next_id = 1 + max(list(vocab.values()) + [a["id"] for a in t["added_tokens"]])
    for byte in list(range(0x80)) + [0xC3, 0xA9, 0xED, 0x95, 0x9C]:
        vocab.setdefault(f"<0x{byte:02X}>", next_id)
        next_id += 1
    return t


def make_tiny_spm(prepend_scheme, split):
    """SentencePiece-style BPE as a tokenizer.json states it (no tokenizer_class): Metaspace, byte
    fallback over only some bytes (so other characters become a fused unk), Strip and Replace
    normalizers, the Replace/ByteFallback/Fuse/Strip decoders (Metaspace's with "always"), and normalized
    added tokens."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Strip(left=True, right=False),
                                           normalizers.Replace(Regex(" {3,}"), "  "),
                                           normalizers.Replace("``", '"')])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=prepend_scheme, split=split)
    if prepend_scheme == "always":
        # The decoder of older SentencePiece conversions; ByteFallback first, or byte tokens stay as text.
        tok.decoder = decoders.Sequence([decoders.ByteFallback(),
                                         decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=split)])
    else:
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(content=" ", left=1, right=0)])
    trainer = trainers.BpeTrainer(vocab_size=260, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
                                  initial_alphabet=list("abcdefghijklmnopqrstuvwxyz\u2581"))
    tok.train_from_iterator([line for line in CORPUS if line.isascii()], trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.add_tokens([AddedToken("hello world", normalized=True), AddedToken("[X]", normalized=False, rstrip=True)])
    t = add_byte_tokens(json.loads(tok.to_str()))
    return t, {"eos_token": "</s>", "bos_token": "<s>"}


def make_tiny_gemma():
    """A tokenizer folder that AutoTokenizer loads as GemmaTokenizer (tokenizer_class), which rebuilds the pipeline:
    the file states a Metaspace pre-tokenizer with a prefix space, which the class replaces by Replace(" ", "▁") with
    no prefix space, so following the file would give other ids. BPE with byte fallback over some bytes and a fused
    unk, Gemma's special tokens (pad, eos, bos, unk, mask: ids 0-4) and a BOS template."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    trainer = trainers.BpeTrainer(vocab_size=280, special_tokens=specials, show_progress=False,
                                  initial_alphabet=list("abcdefghijklmnopqrstuvwxyz\u2581"))
    tok.train_from_iterator([line for line in CORPUS if line.isascii()], trainer)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
    t = add_byte_tokens(json.loads(tok.to_str()))
    config = {"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>",
              "pad_token": "<pad>", "mask_token": "<mask>", "add_bos_token": True, "add_eos_token": False}
    save_tokenizer_dir("tiny-gemma", t, config)
    from transformers import AutoTokenizer
    auto = AutoTokenizer.from_pretrained(os.path.join(OUT, "tiny-gemma"))
    assert type(auto).__name__ == "GemmaTokenizer", type(auto).__name__
    return auto


def fixture(name, tok, texts):
    vocab = tok.get_vocab(with_added_tokens=True) if isinstance(tok, Tokenizer) else tok.get_vocab()
    cases = []
    for text in texts:
        for add in (True, False):
            cases.append({"text": text, "add_special_tokens": add, "ids": encode_ids(tok, text, add)})
    # A decode entry names its ids either by case index or, for the single-id ones, directly.
    # skip_special_tokens=True is written only where it changes the text, to keep the files small.
    # WhisperTokenizer.decode also drops timestamp tokens ("<|0.00|>") and prompts from the text, for
    # speech transcripts; dpo-dist does not, and its fixture records the backend's decode (the pipeline).
    decoder = tok._tokenizer if type(tok).__name__ == "WhisperTokenizer" else tok
    decode = []
    for index, case in enumerate(cases):
        if case["add_special_tokens"]:
            text = decoder.decode(case["ids"], skip_special_tokens=False)
            decode.append({"case": index, "skip_special_tokens": False, "text": text})
            skipped = decoder.decode(case["ids"], skip_special_tokens=True)
            if skipped != text:
                decode.append({"case": index, "skip_special_tokens": True, "text": skipped})
    for text in DECODE_EACH:
        for i in encode_ids(tok, text, False):
            decode.append({"ids": [i], "skip_special_tokens": False, "text": decoder.decode([i], skip_special_tokens=False)})
    result = {"tokenizer": name, "tokenizers_version": tokenizers.__version__,
              "vocab_size": max(vocab.values()) + 1, "cases": cases, "decode": decode}
    if not isinstance(tok, Tokenizer):
        import transformers
        result["transformers_version"] = transformers.__version__
        result["transformers_class"] = type(tok).__name__
        if decoder is not tok:
            result["decode_by"] = "the backend tokenizer (WhisperTokenizer.decode also drops timestamps and prompts)"
        if tok.chat_template:
            text = tok.apply_chat_template(CHAT, tokenize=False)
            result["chat"] = {"messages": CHAT, "text": text, "ids": tok.encode(text, add_special_tokens=False)}
    return result


def auto_tokenizer(name, model_type=None):
    """transformers' AutoTokenizer over a shared folder, alone or beside a config.json of `model_type`."""
    from transformers import AutoTokenizer
    folder = os.path.join(SHARED, name)
    if model_type is None:
        return AutoTokenizer.from_pretrained(folder)
    with tempfile.TemporaryDirectory() as temporary:
        for entry in os.listdir(folder):
            os.symlink(os.path.join(folder, entry), os.path.join(temporary, entry))
        with open(os.path.join(temporary, "config.json"), "w") as f:
            json.dump({"model_type": model_type}, f)
        return AutoTokenizer.from_pretrained(temporary)


def main():
    if not os.path.isdir(SHARED):
        sys.exit(f"missing {SHARED}: the real tokenizers folder beside the repository")
    wanted = set(sys.argv[1:])
    makers = {"tiny-bpe": lambda: save_tokenizer_dir("tiny-bpe", *make_tiny_bpe()),
              "tiny-bpe-llama3": lambda: save_tokenizer_dir("tiny-bpe-llama3", *make_tiny_llama3(make_tiny_bpe()[0])),
              "tiny-bpe-unk": lambda: save_tokenizer_dir("tiny-bpe-unk", *make_tiny_unk()),
              "tiny-spm-first": lambda: save_tokenizer_dir("tiny-spm-first", *make_tiny_spm("first", True)),
              "tiny-spm-always": lambda: save_tokenizer_dir("tiny-spm-always", *make_tiny_spm("always", False)),
              "tiny-spm-never": lambda: save_tokenizer_dir("tiny-spm-never", *make_tiny_spm("never", True)),
              "tiny-gemma": make_tiny_gemma}
    for name in REAL:
        makers[name] = lambda name=name: auto_tokenizer(name)
    for name, model_type in WITH_MODEL_TYPE:
        makers[f"{name}@{model_type}"] = lambda name=name, model_type=model_type: auto_tokenizer(name, model_type)
    unknown = wanted - set(makers)
    if unknown:
        sys.exit(f"unknown fixture names: {sorted(unknown)} (known: {sorted(makers)})")
    for name, make in makers.items():
        if wanted and name not in wanted:
            continue
        tok = make()
        path = os.path.join(OUT, f"{name}.ids.json")
        # The long text splits into ~800 ids with a tiny vocabulary; the real ones suffice for it.
        texts = TEXTS + RANDOM_TEXTS if name.startswith("tiny") else TEXTS + RANDOM_TEXTS + [LONG] + HARD_TEXTS + special_texts(tok)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(fixture(name, tok, texts), f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes, {type(tok).__name__})")


if __name__ == "__main__":
    main()
