#!/usr/bin/env python3
"""Check that a model directory written by dpo-dist loads in transformers and matches a fixture's logits.

Usage: python tools/check_saved_model.py MODEL_DIR FIXTURE_DIR [--tol 1e-4]

MODEL_DIR   a Hugging Face model directory (config.json, model.safetensors, tokenizer files), e.g. one
            that `dpo-dist` saved after importing a fixture model (with no training steps in between).
FIXTURE_DIR a folder made by tools/make_model_fixtures.py, e.g. Tests/DPOTestSupport/Fixtures/models/llama-tied
            (its reference.safetensors holds ids.<i> and logits.<i>).

Loads the model with AutoModelForCausalLM.from_pretrained (float32 compute, eager attention) and the tokenizer
with AutoTokenizer.from_pretrained, runs each fixture sequence alone and prints the max |logit difference|.
Exits 1 when any difference is above --tol (default 1e-4) or when something fails to load. When the fixture has
its own tokenizer (FIXTURE_DIR/model), it also checks that both tokenizers encode the fixture's pairs alike.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description="Compare a saved model's logits with a fixture's reference logits.")
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("fixture_dir", type=Path)
    ap.add_argument("--tol", type=float, default=1e-4, help="largest allowed |logit difference| (default 1e-4)")
    args = ap.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")

    ref_path = args.fixture_dir / "reference.safetensors"
    if not ref_path.is_file():
        print(f"error: {ref_path} not found; FIXTURE_DIR must be a folder made by tools/make_model_fixtures.py")
        return 1
    ref = load_file(ref_path)
    n = sum(1 for k in ref if k.startswith("ids."))

    try:
        tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    except Exception as e:  # noqa: BLE001 - report any loading failure plainly
        print(f"FAIL: tokenizer in {args.model_dir} does not load: {type(e).__name__}: {e}")
        return 1
    print(f"tokenizer: {type(tokenizer).__name__}, {len(tokenizer)} tokens, eos {tokenizer.eos_token!r}")

    try:
        model = AutoModelForCausalLM.from_pretrained(
            args.model_dir, dtype=torch.float32, attn_implementation="eager"
        ).eval()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: model in {args.model_dir} does not load: {type(e).__name__}: {e}")
        return 1
    print(f"model: {type(model).__name__}, vocab {model.config.vocab_size}")

    ok = True
    if len(tokenizer) > model.config.vocab_size:
        print(f"FAIL: tokenizer has {len(tokenizer)} tokens, the model's vocab_size is {model.config.vocab_size}")
        ok = False

    worst = 0.0
    with torch.no_grad():
        for i in range(n):
            ids = ref[f"ids.{i}"]
            expected = ref[f"logits.{i}"]
            got = model(input_ids=ids[None]).logits[0].float()
            if got.shape != expected.shape:
                print(f"FAIL: sequence {i}: logits shape {tuple(got.shape)}, fixture {tuple(expected.shape)}")
                ok = False
                continue
            diff = (got - expected).abs().max().item()
            worst = max(worst, diff)
            print(f"sequence {i} ({len(ids)} tokens): max |logit diff| = {diff:.3e}")
    print(f"max |logit diff| over {n} sequences = {worst:.3e} (tolerance {args.tol:g})")
    if worst > args.tol:
        ok = False

    fixture_tok_dir = args.fixture_dir / "model"
    pairs_path = args.fixture_dir / "pairs.jsonl"
    if (fixture_tok_dir / "tokenizer.json").is_file() and pairs_path.is_file():
        fixture_tok = AutoTokenizer.from_pretrained(fixture_tok_dir)
        texts = []
        for line in pairs_path.read_text().splitlines():
            pair = json.loads(line)
            texts += [pair["prompt"], pair["prompt"] + pair["chosen"], pair["prompt"] + pair["rejected"]]
        mismatches = [t for t in texts if tokenizer(t)["input_ids"] != fixture_tok(t)["input_ids"]]
        print(f"tokenizer vs fixture tokenizer: {len(texts) - len(mismatches)}/{len(texts)} texts encode alike")
        if mismatches:
            print(f"FAIL: first differing text: {mismatches[0]!r}")
            ok = False

    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
