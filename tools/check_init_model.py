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

A model made over a real tokenizer (`dpo-dist init --output DIR --tokenizer TOKDIR`):

    python tools/check_init_model.py DIR --real-tokenizer

checks that transformers loads it (no missing or unexpected tensors, finite logits), that vocab_size
covers the tokenizer, that config.json's and generation_config.json's EOS is the tokenizer's, and
that the chat template's assistant turn ends with EOS.

    python tools/check_init_model.py DIR [--real-tokenizer] --chat-fixture \
        Tests/DPOTestSupport/Fixtures/init/chat_ids.json --name NAME [--source TOKDIR_NAME]

also renders a few conversations with AutoTokenizer's apply_chat_template and stores the text and
AutoTokenizer's ids (add_special_tokens=False, as TRL tokenizes chat text) under NAME in that file
(other names in it are kept). The committed file was made with:

    B=.build/debug/dpo-dist F=Tests/DPOTestSupport/Fixtures/init/chat_ids.json
    $B init --output /tmp/chat/own
    python tools/check_init_model.py /tmp/chat/own --chat-fixture $F --name own
    for t in smollm2-135m qwen3; do
        $B init --output /tmp/chat/$t --tokenizer ../shared/tokenizers/$t
        python tools/check_init_model.py /tmp/chat/$t --real-tokenizer --chat-fixture $F --name $t --source $t
    done

InitModelTests makes the same directories and checks that dpo-dist renders and tokenizes each
conversation to the same text and ids (the real tokenizers are skipped where ../shared is absent).

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
# BOS and pad are <|endoftext|>; EOS is the end of a ChatML turn (as SmolLM2-Instruct, Qwen2.5-Instruct).
BOS, EOS, PAD = SPECIALS[0], SPECIALS[2], SPECIALS[0]

# Conversations rendered for the chat fixture: a prompt with the generation prompt (what DPO's
# prompt is), prompt + answer without it (prompt + chosen), a system turn, several turns with
# accents, Korean and emoji.
CONVERSATIONS = [
    ([{"role": "user", "content": "What is 3+4?"}], True),
    ([{"role": "user", "content": "What is 3+4?"}, {"role": "assistant", "content": "7"}], False),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."},
      {"role": "assistant", "content": "Blue."}], False),
    ([{"role": "user", "content": "Bonjour, ça va ?"}, {"role": "assistant", "content": "Très bien ✨ merci."},
      {"role": "user", "content": "모델은 선호하는 답을 배웁니다?"}], True),
]

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
    for token, expected in (("bos_token", BOS), ("eos_token", EOS), ("pad_token", PAD)):
        if getattr(tok, token) != expected:
            failures.append(f"{token} is {getattr(tok, token)!r}, expected {expected!r}")
    for i, special in enumerate(SPECIALS):
        if tok.convert_tokens_to_ids(special) != i:
            failures.append(f"{special} has id {tok.convert_tokens_to_ids(special)}, expected {i}")
    if config.eos_token_id != 2 or config.bos_token_id != 0:
        failures.append(f"config bos/eos ids {config.bos_token_id}/{config.eos_token_id}, expected 0/2")
    failures += eos_consistency(directory, tok, model)

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
    report(failures)


def report(failures):
    """Prints the failures and exits 1, or prints OK."""
    if failures:
        print("FAILED:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("OK")


def eos_consistency(directory, tok, model):
    """EOS agrees across tokenizer, config.json and generation_config.json, and ends the assistant's turn."""
    failures = []
    eos_id = tok.eos_token_id
    if model.config.eos_token_id != eos_id:
        failures.append(f"config.json eos_token_id {model.config.eos_token_id}, the tokenizer's EOS {tok.eos_token!r} is {eos_id}")
    stops = model.generation_config.eos_token_id
    stops = stops if isinstance(stops, list) else [stops]
    if not stops or stops[0] != eos_id:
        failures.append(f"generation_config.json eos_token_id {stops} does not start with the tokenizer's EOS {eos_id}")
    if tok.chat_template:
        messages = CONVERSATIONS[1][0]
        ids = tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
        answer = tok(messages[-1]["content"], add_special_tokens=False)["input_ids"]
        # The answer's tokens, then EOS (possibly after other tokens of the template, such as a newline).
        at = max(i for i in range(len(ids) - len(answer) + 1) if ids[i:i + len(answer)] == answer)
        after = ids[at + len(answer):]
        if eos_id not in after[:2]:
            failures.append(f"the chat template ends the assistant's turn with {tok.convert_ids_to_tokens(after[:2])}, "
                            f"not with EOS {tok.eos_token!r}: generation would run past the turn")
        else:
            print(f"chat template: the assistant's turn ends with EOS {tok.eos_token!r}")
    if not failures:
        print(f"EOS {tok.eos_token!r} (id {eos_id}): config.json and generation_config.json ({stops}) agree")
    return failures


def check_real_tokenizer(directory):
    """A model `dpo-dist init --tokenizer` made: loads, vocabulary covers the tokenizer, EOS consistent."""
    failures = []
    tok = AutoTokenizer.from_pretrained(directory)
    model, info = AutoModelForCausalLM.from_pretrained(directory, output_loading_info=True)
    print(f"transformers {transformers.__version__}: {type(tok).__name__}, {len(tok)} tokens; {type(model).__name__}, "
          f"vocab_size {model.config.vocab_size}; loading info {info}")
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(key):
            failures.append(f"{key}: {info[key]}")
    if len(tok) > model.config.vocab_size:
        failures.append(f"tokenizer has {len(tok)} tokens but the model's vocab_size is {model.config.vocab_size}")
    failures += eos_consistency(directory, tok, model)
    with torch.no_grad():
        logits = model(**tok("Hello world", return_tensors="pt")).logits
    if not torch.isfinite(logits).all():
        failures.append("logits are not all finite")
    return failures


def write_chat_fixture(directory, path, name, source):
    """Adds NAME to the chat fixture: AutoTokenizer's rendering and ids of CONVERSATIONS."""
    tok = AutoTokenizer.from_pretrained(directory)
    if not tok.chat_template:
        sys.exit(f"{directory}: no chat template; nothing to render")
    cases = []
    for messages, generation in CONVERSATIONS:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
        cases.append({"messages": messages, "add_generation_prompt": generation, "text": text,
                      "ids": tok(text, add_special_tokens=False)["input_ids"]})
    fixture = {"made_by": "tools/check_init_model.py --chat-fixture", "models": {}}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            fixture = json.load(f)
    fixture["transformers_version"] = transformers.__version__
    fixture["tokenizers_version"] = tokenizers.__version__
    fixture["models"][name] = {"source": source, "tokens": len(tok), "eos_token": tok.eos_token,
                               "eos_token_id": tok.eos_token_id, "cases": cases}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}: {name}, {len(cases)} conversations")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--write-fixture", action="store_true",
                        help="write DIRECTORY/ids.json from DIRECTORY/tokenizer.json instead of checking a model")
    parser.add_argument("--fresh", action="store_true", help="also check the weights look freshly initialised")
    parser.add_argument("--real-tokenizer", action="store_true",
                        help="DIRECTORY was made with `dpo-dist init --tokenizer`: check loading and EOS, not init's own tokenizer")
    parser.add_argument("--chat-fixture", help="also add chat renderings and AutoTokenizer ids under --name to this JSON file")
    parser.add_argument("--name", help="the entry's name in --chat-fixture")
    parser.add_argument("--source", help="the folder name in ../shared/tokenizers the tokenizer came from (none: init's own)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.write_fixture:
        write_fixture(args.directory)
        return
    if args.real_tokenizer:
        report(check_real_tokenizer(args.directory))
    else:
        check(args.directory, args.fresh)
    if args.chat_fixture:
        if not args.name:
            sys.exit("--chat-fixture needs --name")
        write_chat_fixture(args.directory, args.chat_fixture, args.name, args.source)


if __name__ == "__main__":
    main()
