#!/usr/bin/env python3
"""Check that a model directory written by dpo-dist loads in transformers and matches a fixture's logits.

Usage: python tools/check_saved_model.py MODEL_DIR FIXTURE_DIR [--tol 1e-4]
       python tools/check_saved_model.py MODEL_DIR FIXTURE_DIR --scores SCORES.jsonl [--pairs PAIRS.jsonl] [--rel-tol 1e-4]

MODEL_DIR   a Hugging Face model directory (config.json, model.safetensors, tokenizer files), e.g. one
            that `dpo-dist` saved after importing a fixture model (with no training steps in between).
FIXTURE_DIR a folder made by tools/make_model_fixtures.py, e.g. Tests/DPOTestSupport/Fixtures/models/llama-tied
            (its reference.safetensors holds ids.<i> and logits.<i>).

Loads the model with AutoModelForCausalLM.from_pretrained (float32 compute, eager attention) and the tokenizer
with AutoTokenizer.from_pretrained, runs each fixture sequence alone and prints the max |logit difference|.
Exits 1 when any difference is above --tol (default 1e-4) or when something fails to load. When the fixture has
its own tokenizer (FIXTURE_DIR/model), it also checks that both tokenizers encode the fixture's pairs alike.

With --scores, MODEL_DIR may hold weights dpo-dist trained (so the fixture's logits no longer apply): SCORES.jsonl is
what `dpo-dist score --model MODEL_DIR --data PAIRS.jsonl` wrote (PAIRS.jsonl defaults to FIXTURE_DIR/pairs.jsonl),
and the check is instead that transformers, over the same pairs tokenized by TRL's own DPOTrainer._prepare_dataset,
gives the same summed completion log-probs (float64 compute over the saved weights) within --rel-tol (default 1e-4)
and the same token counts. tools/check_saved_architectures.sh runs both checks for the qwen3, olmo2 and phi3 fixtures.
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
    ap.add_argument("--scores", type=Path, help="`dpo-dist score` output for MODEL_DIR: compare log-probs, not logits")
    ap.add_argument("--pairs", type=Path, help="the pairs --scores was made from (default FIXTURE_DIR/pairs.jsonl)")
    ap.add_argument("--rel-tol", type=float, default=1e-4, help="largest allowed relative log-prob difference")
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

    if args.scores is not None:
        ok = check_scores(args, tokenizer) and ok
    else:
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


def check_scores(args, tokenizer) -> bool:
    """transformers' summed completion log-probs of the pairs (TRL's tokenization, float64) against dpo-dist's."""
    import datasets
    from datasets import Dataset
    from types import SimpleNamespace
    from trl import DPOTrainer

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    pairs_path = args.pairs or args.fixture_dir / "pairs.jsonl"
    pairs = [json.loads(line) for line in pairs_path.read_text().splitlines() if line.strip()]
    ours = [json.loads(line) for line in args.scores.read_text().splitlines() if line.strip()]
    if len(ours) != len(pairs):
        print(f"FAIL: {args.scores} has {len(ours)} lines for {len(pairs)} pairs")
        return False
    stub = SimpleNamespace(_tokenizer=tokenizer)
    targs = SimpleNamespace(dataset_num_proc=None, max_length=None, truncation_mode="keep_start")
    rows = DPOTrainer._prepare_dataset(stub, Dataset.from_list(pairs), tokenizer, targs, "check")
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float64, attn_implementation="eager").eval()
    ok, worst = True, 0.0
    with torch.no_grad():
        for i, (row, score) in enumerate(zip(rows, ours)):
            for side in ("chosen", "rejected"):
                prompt, completion = row["prompt_ids"], row[f"{side}_ids"]
                ids = torch.tensor(prompt + completion)
                logp = torch.log_softmax(model(input_ids=ids[None]).logits[0], dim=-1)[:-1]
                theirs = logp.gather(1, ids[1:, None])[:, 0][len(prompt) - 1:].sum().item()
                mine = score[f"{side}_logps"]
                rel = abs(mine - theirs) / max(abs(theirs), 1e-3)
                worst = max(worst, rel)
                if score[f"{side}_tokens"] != len(completion):
                    print(f"FAIL: pair {i} {side}: {score[f'{side}_tokens']} completion tokens, TRL has {len(completion)}")
                    ok = False
                print(f"pair {i} {side}: dpo-dist {mine:.6f}, transformers {theirs:.6f} (rel {rel:.1e})")
    print(f"max relative log-prob difference over {len(pairs)} pairs = {worst:.3e} (tolerance {args.rel_tol:g})")
    return ok and worst <= args.rel_tol


if __name__ == "__main__":
    sys.exit(main())
