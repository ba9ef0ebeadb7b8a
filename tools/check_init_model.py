#!/usr/bin/env python3
"""Checks that transformers loads what `dpo-dist init` writes, and makes the tokenizer fixture of
Tests/TokenizationTests/TokenizerFilesTests.swift.

    python tools/check_init_model.py DIR            # DIR from `dpo-dist init --output DIR`
    python tools/check_init_model.py DIR --fresh    # also: the weights look freshly initialised

loads DIR with AutoTokenizer and AutoModelForCausalLM and checks: no missing or unexpected tensors,
the special tokens, that AutoTokenizer and the `tokenizers` library give the same ids for every test
string and decode them back to the same string, the ChatML chat template, finite logits, and greedy
generation. It prints everything transformers logged while loading. Exit code 1 on any failure.

    python tools/check_init_model.py --write-fixture Tests/DPOTestSupport/Fixtures/init

writes ids.json beside the tokenizer.json in that folder: the ids of each test string under the
`tokenizers` library (checked equal to AutoTokenizer's) and what decode returns. The fixture's
tokenizer.json and tokenizer_config.json come from dpo-dist itself, made from the corpus.txt
committed beside them:

    swift build && .build/debug/dpo-dist init --output /tmp/init-fixture --merges 300 \\
        --tokenizer-from Tests/DPOTestSupport/Fixtures/init/corpus.txt
    cp /tmp/init-fixture/tokenizer.json /tmp/init-fixture/tokenizer_config.json Tests/DPOTestSupport/Fixtures/init/
    python tools/check_init_model.py --write-fixture Tests/DPOTestSupport/Fixtures/init

The Swift test rebuilds that tokenizer.json from corpus.txt (so the committed file is the Swift
trainer's output) and compares its ids with ids.json (so the Swift tokenizer agrees with transformers).

Needs: torch, transformers, tokenizers (see tools/README.md). Sets HF_HUB_OFFLINE=1.
"""

import argparse
import io
import json
import logging
import math
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Strings that exercise the byte-level pipeline: merges learned from the corpus and unseen words,
# digits and signs, runs of spaces, tabs and new lines, contractions, accents (precomposed and
# combining), Korean, Chinese, emoji with a skin-tone modifier, control bytes, special tokens
# inside text, and the empty string.
TEXTS = [
    "Hello world",
    "The model learns the pairs of tokens.",
    "3+4=7",
    "12+30=42, 9-5=4 and 1234567890",
    "rev cat=tac",
    "first dog sun=dog",
    " leading space",
    "  two spaces  and trailing  ",
    "tab\there\nnew line\n\nend\n",
    "don't it's we're they've I'm we'll you'd",
    "Le modèle apprend à préférer la bonne réponse.",
    "e\u0301 is e with a combining accent",
    "모델은 선호하는 답을 배웁니다",
    "中文数据也一样。",
    "🚀✨👍🏽 emoji",
    "null\u0000 and bell\u0007 bytes",
    "unseen words: xylophone quixotic zephyr",
    "<|im_start|>user\nWhat is 3+4?<|im_end|>\n<|im_start|>assistant\n7<|im_end|>\n",
    "a completion<|endoftext|>",
    "<|im_start|>",
    "",
]

CHATML = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n3+4=<|im_end|>\n<|im_start|>assistant\n"


def tokenizer_cases(directory):
    """Ids and decodings of TEXTS under `tokenizers` and AutoTokenizer, checked equal."""
    raw = tokenizers.Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(directory)
    cases, failures = [], []
    for text in TEXTS:
        ids = raw.encode(text, add_special_tokens=True).ids
        if raw.encode(text, add_special_tokens=False).ids != ids:
            failures.append(f"{text!r}: add_special_tokens changes the ids (there should be no post-processor)")
        auto_ids = auto(text)["input_ids"]
        if auto_ids != ids:
            failures.append(f"{text!r}: AutoTokenizer {auto_ids} != tokenizers {ids}")
        decoded = raw.decode(ids, skip_special_tokens=False)
        if auto.decode(ids) != decoded:
            failures.append(f"{text!r}: AutoTokenizer decodes {auto.decode(ids)!r}, tokenizers {decoded!r}")
        if decoded != text:
            failures.append(f"{text!r}: decodes back as {decoded!r}")
        cases.append({"text": text, "ids": ids, "decoded": decoded,
                      "decoded_skip_special": raw.decode(ids, skip_special_tokens=True)})
    return cases, failures, auto


def write_fixture(directory):
    cases, failures, _ = tokenizer_cases(directory)
    if failures:
        sys.exit("\n".join(["transformers and tokenizers disagree; no fixture written:"] + failures))
    out = {
        "made_by": "tools/check_init_model.py --write-fixture",
        "tokenizers_version": tokenizers.__version__,
        "transformers_version": transformers.__version__,
        "cases": cases,
    }
    path = os.path.join(directory, "ids.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(cases)} strings, AutoTokenizer == tokenizers on each")


def check(directory, fresh):
    failures = []

    # Everything transformers says while loading, warnings included, is shown to the user.
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    transformers.logging.set_verbosity_warning()
    transformers.logging.get_logger().addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cases, tok_failures, tok = tokenizer_cases(directory)
        model, info = AutoModelForCausalLM.from_pretrained(directory, output_loading_info=True)
    transformers.logging.get_logger().removeHandler(handler)
    failures += tok_failures
    said = log.getvalue().strip().splitlines() + [f"{w.category.__name__}: {w.message}" for w in caught]
    print(f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, torch {torch.__version__}")
    print("transformers said while loading: " + ("nothing (no warnings)" if not said else ""))
    for line in said:
        print("  " + line)
    print(f"loading info: {info}")
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(key):
            failures.append(f"{key}: {info[key]}")

    config = model.config
    print(f"model: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"vocab_size {config.vocab_size}, hidden {config.hidden_size}, layers {config.num_hidden_layers}, "
          f"heads {config.num_attention_heads}/{config.num_key_value_heads}, tied {config.tie_word_embeddings}")
    print(f"tokenizer: {type(tok).__name__}, {len(tok)} tokens, bos/eos/pad {tok.bos_token!r}/{tok.eos_token!r}/"
          f"{tok.pad_token!r}, specials {tok.all_special_tokens}")
    if len(tok) > config.vocab_size:
        failures.append(f"tokenizer has {len(tok)} tokens but the model's vocab_size is {config.vocab_size}")
    for token in ("bos_token", "eos_token", "pad_token"):
        if getattr(tok, token) != SPECIALS[0]:
            failures.append(f"{token} is {getattr(tok, token)!r}, expected {SPECIALS[0]!r}")
    for i, special in enumerate(SPECIALS):
        if tok.convert_tokens_to_ids(special) != i:
            failures.append(f"{special} has id {tok.convert_tokens_to_ids(special)}, expected {i}")
    if config.eos_token_id != 0 or config.bos_token_id != 0:
        failures.append(f"config bos/eos ids {config.bos_token_id}/{config.eos_token_id}, expected 0/0")

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "3+4="}]
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if rendered != CHATML:
        failures.append(f"chat template renders {rendered!r}, expected {CHATML!r}")
    print(f"round trip: {len(cases)} strings; ids equal under AutoTokenizer and tokenizers; chat template: ChatML")

    model.eval()
    torch.manual_seed(0)
    texts = [t for t in TEXTS if t]
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**batch, labels=batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100))
    if not torch.isfinite(out.logits).all():
        failures.append("logits are not all finite")
    print(f"forward: logits {tuple(out.logits.shape)} finite; mean loss {out.loss.item():.4f} "
          f"(ln vocab_size = {math.log(config.vocab_size):.4f})")
    prompt = tok("3+4=", return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    print(f"greedy generation from '3+4=': {tok.decode(generated[0])!r}")

    if fresh:
        # transformers' init: normal(0, initializer_range) for matrices and embeddings, 1 for norms.
        std = config.initializer_range
        for name, p in model.named_parameters():
            p = p.detach()
            if name.endswith("norm.weight"):
                if not torch.all(p == 1):
                    failures.append(f"{name} is not all ones")
            elif abs(p.std().item() - std) > 0.15 * std or abs(p.mean().item()) > 0.2 * std:
                failures.append(f"{name}: mean {p.mean().item():.5f}, std {p.std().item():.5f}; expected N(0, {std})")
        if abs(out.loss.item() - math.log(config.vocab_size)) > 0.1:
            failures.append(f"a fresh model's loss should be near ln(vocab_size), got {out.loss.item():.4f}")
        print("fresh init: norms 1, other tensors N(0, %g) within 15%%" % std)

    if failures:
        print("FAILED:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("OK")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--write-fixture", action="store_true",
                        help="write DIRECTORY/ids.json from DIRECTORY/tokenizer.json instead of checking a model")
    parser.add_argument("--fresh", action="store_true", help="also check the weights look freshly initialised")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.write_fixture:
        write_fixture(args.directory)
    else:
        check(args.directory, args.fresh)


if __name__ == "__main__":
    main()
