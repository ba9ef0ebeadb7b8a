#!/usr/bin/env python3
"""Check that a LoRA adapter written by dpo-dist loads in PEFT and gives dpo-dist's log-probs.

Usage:
  dpo-dist score --model ADAPTER_DIR --data PAIRS.jsonl --output scores.jsonl
  python tools/check_saved_adapter.py ADAPTER_DIR PAIRS.jsonl scores.jsonl [--tol 1e-4] [--write OUT.jsonl]
  dpo-dist merge --model ADAPTER_DIR --output-dir MERGED_DIR
  python tools/check_saved_adapter.py ADAPTER_DIR PAIRS.jsonl - --merged MERGED_DIR

ADAPTER_DIR  a directory with adapter_config.json and adapter_model.safetensors (a `dpo-dist train --use-peft`
             output or checkpoint); its base_model_name_or_path is read as dpo-dist reads it: as given, else
             relative to the adapter directory's parent.
PAIRS.jsonl  {"prompt", "chosen", "rejected"} rows (standard, not conversational).
scores.jsonl what `dpo-dist score` wrote for the same adapter and rows (or "-" to skip the comparison).

Loads the base with AutoModelForCausalLM.from_pretrained (float32, eager attention) and the adapter with
PeftModel.from_pretrained, tokenizes the rows as TRL 1.16's DPOTrainer does (its own dataset preparation), runs
each pair alone (batch 1) and sums each completion's token log-probs in float64. Prints the worst relative
difference from scores.jsonl; exits 1 above --tol (default 1e-4) or when anything fails to load. --write saves
PEFT's log-probs with TRL's token ids per row (the fixture Tests/DPOTestSupport/Fixtures/trl/lora/
written-by-dpo-dist.peft-logps.jsonl was made so). --merged MERGED_DIR also loads a merged model (`dpo-dist
merge`'s output) with AutoModelForCausalLM alone, no PEFT, and compares its log-probs with PEFT's of the adapter.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402


def summed_logps(net, trainer) -> list:
    """Each row of `trainer`'s prepared dataset (TRL's tokenization) through `net` alone (batch 1): its token
    ids and the float64 sums of the chosen and rejected completions' token log-probs."""
    rows = []
    for i, ex in enumerate(trainer.train_dataset):
        example = {k: ex[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")}
        batch = trainer.data_collator([example])
        with torch.no_grad():
            ids = batch["input_ids"]
            logits = net(input_ids=ids, attention_mask=batch["attention_mask"]).logits[:, :-1].double()
            logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            sums = (logp * batch["completion_mask"][:, 1:].double()).sum(1)
        rows.append({"row": i, **example, "chosen_logps": sums[0].item(), "rejected_logps": sums[1].item()})
    return rows


def resolve_base(adapter: Path) -> Path:
    base = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    for candidate in [Path(base), adapter.resolve().parent / base]:
        if candidate.is_dir():
            return candidate
    sys.exit(f"FAIL: base_model_name_or_path {base!r} of {adapter} is not a local directory")


def main() -> int:
    ap = argparse.ArgumentParser(description="Compare PEFT's log-probs of a dpo-dist adapter with dpo-dist score's.")
    ap.add_argument("adapter_dir", type=Path)
    ap.add_argument("pairs", type=Path)
    ap.add_argument("scores", help="dpo-dist score's output for the adapter and pairs, or - to skip")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest allowed relative difference (default 1e-4)")
    ap.add_argument("--write", type=Path, help="write PEFT's log-probs (with TRL's token ids) to this JSONL file")
    ap.add_argument("--merged", type=Path, help="a merged model directory to check against PEFT's log-probs too")
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")

    base_dir = resolve_base(args.adapter_dir)
    tokenizer_dir = args.adapter_dir if (args.adapter_dir / "tokenizer.json").is_file() else base_dir
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
        model = PeftModel.from_pretrained(base, args.adapter_dir).eval()
    except Exception as e:  # noqa: BLE001 - report any loading failure plainly
        print(f"FAIL: {args.adapter_dir} does not load in PEFT: {type(e).__name__}: {e}")
        return 1
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    print(f"adapter: {len(lora)} LoRA tensors on {base_dir}")

    rows = [json.loads(line) for line in args.pairs.read_text().splitlines() if line.strip()]
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    config = DPOConfig(output_dir=tempfile.mkdtemp(), use_cpu=True, bf16=False, report_to=[], max_length=None,
                       activation_checkpointing=False)
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    def compare(ours, what):
        if len(ours) != len(out):
            print(f"FAIL: {what} has {len(ours)} pairs, the data {len(out)}")
            return False
        worst = max(abs(o[k] - p[k]) / abs(p[k]) for o, p in zip(ours, out) for k in ("chosen_logps", "rejected_logps"))
        print(f"{what}: summed completion log-probs of {len(out)} pairs, worst relative difference from PEFT's "
              f"{worst:.2e} (tolerance {args.tol:g})")
        return worst <= args.tol

    out = summed_logps(model, trainer)
    if args.write:
        args.write.write_text("".join(json.dumps(r) + "\n" for r in out))
        print(f"wrote {args.write}")
    ok = True
    if args.scores != "-":
        ok &= compare([json.loads(line) for line in Path(args.scores).read_text().splitlines() if line.strip()],
                      args.scores)
    if args.merged:
        try:
            merged = AutoModelForCausalLM.from_pretrained(args.merged, dtype=torch.float32,
                                                          attn_implementation="eager").eval()
        except Exception as e:  # noqa: BLE001 - report any loading failure plainly
            print(f"FAIL: {args.merged} does not load in transformers: {type(e).__name__}: {e}")
            return 1
        ok &= compare(summed_logps(merged, trainer), f"{args.merged} (transformers, merged)")
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
