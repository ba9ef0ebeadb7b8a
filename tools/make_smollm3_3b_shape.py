#!/usr/bin/env python3
"""Make a model of SmolLM3-3B's shape with random weights, and course-like preference pairs, for the 3B run.

SmolLM3-3B's shape (hidden 2048, 36 layers, 16 heads, 4 KV heads, intermediate 11008, vocab 128256, tied
embeddings, RoPE theta 5e6, NoPE every 4th layer), random weights (transformers' own initialisation, seed 0),
saved by transformers in bf16 as sharded safetensors (2 GB shards, ~6.2 GB in all) with SmolLM3's tokenizer from
../shared/tokenizers/smollm3. Never committed: it is for measuring memory and speed, not for numbers.

Pairs: --pairs rows of made-up words (the tokenizer counts the tokens): prompts of 180-260 tokens, chosen and
rejected completions of 220-320 tokens, so prompt + completion stays under the course's max_length 1024 and its
max_prompt_length 512.

Usage: python tools/make_smollm3_3b_shape.py OUT_DIR [--pairs 64]
Writes OUT_DIR/model/ and OUT_DIR/pairs.jsonl. Needs torch and transformers; about 6.5 GB of disk and 8 GB of RAM.
"""

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, SmolLM3Config, SmolLM3ForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_trl import made_up_text  # noqa: E402

TOKENIZER = Path(__file__).resolve().parent.parent.parent / "shared" / "tokenizers" / "smollm3"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--tokenizer", type=Path, default=TOKENIZER)
    args = ap.parse_args()
    model_dir = args.out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (args.tokenizer / name).exists():
            shutil.copy(args.tokenizer / name, model_dir / name)
    tok = AutoTokenizer.from_pretrained(model_dir)

    if not (model_dir / "model.safetensors.index.json").exists():
        config = SmolLM3Config(
            vocab_size=128256, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
            num_key_value_heads=4, tie_word_embeddings=True, rope_theta=5000000.0, max_position_embeddings=65536,
            rms_norm_eps=1e-6, no_rope_layer_interval=4, use_sliding_window=False, sliding_window=None,
            bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
        torch.manual_seed(0)
        torch.set_default_dtype(torch.bfloat16)
        model = SmolLM3ForCausalLM(config)
        torch.set_default_dtype(torch.float32)
        print(f"parameters: {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B")
        model.save_pretrained(model_dir, max_shard_size="2GB")
        del model

    text = made_up_text(tok, random.Random(0), chunk=16)

    with open(args.out / "pairs.jsonl", "w") as f:
        for _ in range(args.pairs):
            row = {"prompt": "Question: " + text(rng.randint(180, 260)) + "\nAnswer:",
                   "chosen": " " + text(rng.randint(220, 320)), "rejected": " " + text(rng.randint(220, 320))}
            f.write(json.dumps(row) + "\n")
    print(f"wrote {model_dir} and {args.out / 'pairs.jsonl'} ({args.pairs} pairs)")


if __name__ == "__main__":
    main()
