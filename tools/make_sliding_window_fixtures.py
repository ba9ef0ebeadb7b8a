#!/usr/bin/env python3
"""Make Tests/DPOTestSupport/Fixtures/models/sliding_windows.json: which layers of a model attend through a
sliding window, as transformers decides it from config.json.

For each raw config below (Qwen2, Qwen3, SmolLM3, Phi-3, Mistral, Gemma 3, with and without `layer_types`,
`use_sliding_window`, `max_window_layers`, `sliding_window_pattern`), transformers builds the config class, and the script records the
window each layer's attention mask uses: for Mistral and Phi-3 `config.sliding_window` in every layer (their
models build one mask for all layers); for the others `config.sliding_window` where `config.layer_types[i]` is "sliding_attention" (the mask
that layer gets from `causal_mask_mapping`), else null. Each entry is checked by running the model: its logits
equal those of a model whose mask is built by hand from the recorded windows.

Needs: torch, transformers. Usage: python tools/make_sliding_window_fixtures.py
"""

import json
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

OUT = Path(__file__).resolve().parent.parent / "Tests" / "DPOTestSupport" / "Fixtures" / "models" / "sliding_windows.json"

BASE = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False, pad_token_id=0)
CASES = [
    ("qwen2, use_sliding_window, max_window_layers 2", dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"],
     use_sliding_window=True, sliding_window=3, max_window_layers=2)),
    ("qwen2, use_sliding_window false", dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"],
     use_sliding_window=False, sliding_window=3, max_window_layers=2)),
    ("qwen2, explicit layer_types", dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"],
     use_sliding_window=True, sliding_window=5, max_window_layers=0,
     layer_types=["full_attention", "sliding_attention", "full_attention", "sliding_attention"])),
    ("qwen2, sliding_window absent", dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"],
     use_sliding_window=True, max_window_layers=3)),
    ("smollm3, use_sliding_window: the NoPE layers slide", dict(model_type="smollm3",
     architectures=["SmolLM3ForCausalLM"], use_sliding_window=True, sliding_window=3, no_rope_layer_interval=2)),
    ("smollm3, explicit layer_types without use_sliding_window", dict(model_type="smollm3",
     architectures=["SmolLM3ForCausalLM"], use_sliding_window=False, sliding_window=4,
     layer_types=["sliding_attention", "full_attention", "full_attention", "full_attention"])),
    ("qwen3, use_sliding_window, max_window_layers 1", dict(model_type="qwen3", architectures=["Qwen3ForCausalLM"],
     use_sliding_window=True, sliding_window=3, max_window_layers=1)),
    ("qwen3, use_sliding_window false", dict(model_type="qwen3", architectures=["Qwen3ForCausalLM"],
     use_sliding_window=False, sliding_window=3)),
    ("phi3, sliding_window 3 (Phi-3-mini-4k has 2047)", dict(model_type="phi3", architectures=["Phi3ForCausalLM"],
     sliding_window=3)),
    ("phi3, sliding_window absent", dict(model_type="phi3", architectures=["Phi3ForCausalLM"])),
    ("mistral, sliding_window 3", dict(model_type="mistral", architectures=["MistralForCausalLM"], sliding_window=3)),
    ("mistral, sliding_window null", dict(model_type="mistral", architectures=["MistralForCausalLM"],
     sliding_window=None)),
    ("mistral, sliding_window absent", dict(model_type="mistral", architectures=["MistralForCausalLM"])),
    ("gemma3, sliding_window_pattern 2", dict(model_type="gemma3_text", architectures=["Gemma3ForCausalLM"],
     head_dim=8, sliding_window=3, sliding_window_pattern=2)),
    ("gemma3, sliding_window_pattern absent (6)", dict(model_type="gemma3_text", architectures=["Gemma3ForCausalLM"],
     head_dim=8, sliding_window=3)),
    ("gemma3, explicit layer_types", dict(model_type="gemma3_text", architectures=["Gemma3ForCausalLM"],
     head_dim=8, sliding_window=4, sliding_window_pattern=2,
     layer_types=["full_attention", "full_attention", "sliding_attention", "full_attention"])),
    ("gemma3, sliding_window absent (4096)", dict(model_type="gemma3_text", architectures=["Gemma3ForCausalLM"],
     head_dim=8, sliding_window_pattern=3)),
]


def windows(config):
    n = config.num_hidden_layers
    if config.model_type in ("mistral", "phi3"):
        return [config.sliding_window] * n
    return [config.sliding_window if t == "sliding_attention" else None for t in config.layer_types]


def check_by_mask(config, expected):
    """The model's logits equal an eager run whose attention mask is built from `expected`."""
    torch.manual_seed(0)
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config).to(torch.float64).eval()
    T = 12
    ids = torch.randint(0, config.vocab_size, (1, T))
    with torch.no_grad():
        got = model(input_ids=ids).logits
        masks = []
        for w in expected:
            q = torch.arange(T)[:, None]
            k = torch.arange(T)[None, :]
            allowed = (k <= q) & ((k > q - w) if w is not None else torch.ones_like(k, dtype=torch.bool))
            bias = torch.zeros(T, T, dtype=torch.float64).masked_fill(~allowed, torch.finfo(torch.float64).min)
            masks.append(bias[None, None])
        hooks = []
        for layer, m in zip(model.model.layers, masks):
            hooks.append(layer.register_forward_pre_hook(
                lambda mod, args, kwargs, m=m: (args, dict(kwargs, attention_mask=m)), with_kwargs=True))
        want = model(input_ids=ids).logits
        for h in hooks:
            h.remove()
    assert torch.allclose(got, want, atol=1e-12), (config.model_type, expected, (got - want).abs().max())


def main():
    entries = []
    for name, raw in CASES:
        raw = dict(BASE, **raw)
        config = AutoConfig.for_model(raw["model_type"], **{k: v for k, v in raw.items() if k != "model_type"})
        expected = windows(config)
        check_by_mask(config, expected)
        entries.append({"case": name, "config": raw, "layer_windows": expected})
        print(f"{name}: {expected}")
    OUT.write_text(json.dumps({"transformers": transformers.__version__, "cases": entries}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
