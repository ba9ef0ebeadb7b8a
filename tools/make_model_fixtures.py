#!/usr/bin/env python3
"""Make the tiny-model reference fixtures under Tests/DPOTestSupport/Fixtures/models/.

For each of nine tiny models (llama-tied, qwen2-untied, llama3-bf16, smollm3, qwen3, olmo2, phi3, mistral-window:
sliding window 8, gemma3: sliding window 8 in layers 0 and 2, full attention in layer 1) this script
  * trains a byte-level BPE tokenizer (vocab 320) with the `tokenizers` library,
  * builds the model with transformers, trains it briefly (AdamW, fp32) so its logits are not uniform,
  * saves it as a Hugging Face model directory `<name>/model/` (config.json in the stated form),
    and writes `config.v4.json` / `config.v5.json` (the same config in both forms) beside it,
  * reloads the saved directory in float64 (eager attention) and writes reference logits, log-probs and
    the gradient of a weighted log-prob loss for every parameter (`reference.safetensors`, `reference.json`),
  * tokenizes preference pairs exactly the way the installed TRL DPOTrainer does (by calling TRL's own
    `DPOTrainer._prepare_dataset` and `DataCollatorForPreference`) and writes the summed completion
    log-probs (`pairs.jsonl`, `scores.jsonl`, `scores.rule.jsonl`, `pairs.tokens.json`).

Deterministic (fixed seeds, fixed thread count); rerunnable: each model folder is deleted and rewritten.
Needs: torch, transformers, tokenizers, safetensors, trl (and datasets, which trl pulls in). No network:
nothing is loaded from the Hugging Face hub.

Usage: python tools/make_model_fixtures.py [--out DIR] [--only NAME ...]
"""

import argparse
import copy
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Olmo2Config,
    Olmo2ForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    SmolLM3Config,
    SmolLM3ForCausalLM,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "Tests" / "DPOTestSupport" / "Fixtures" / "models"

EOS = "<|endoftext|>"
SPECIAL_TOKENS = [EOS, "<|im_start|>", "<|im_end|>"]
VOCAB_SIZE = 320
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Text the tokenizer and the models are trained on: short English and code.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "The capital of France is Paris, and the capital of England is London.",
    "My favourite season of the year is the summer, when the days are long and warm.",
    "Direct preference optimization trains a policy from pairs of chosen and rejected answers.",
    "The reference model stays frozen while the policy is trained on the preference data.",
    "A language model assigns a probability to every token that comes next in the text.",
    "Hello, world! This is a tiny model that learns the shape of English text.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "In the beginning the data is tokenized, then the model reads the tokens one by one.",
    "def add(a, b):\n    return a + b\n",
    "def greet(name):\n    print(\"Hello, \" + name)\n",
    "for i in range(10):\n    total = total + i\n",
    "if x > 0:\n    return x\nelse:\n    return -x\n",
    "import torch\nx = torch.zeros(3, 4)\nprint(x.shape)\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "Question: What is two plus two?\nAnswer: Four.",
    "Question: What color is the sky?\nAnswer: The sky is blue on a clear day.",
    "Write a Python function that adds two numbers.\ndef add(a, b):\n    return a + b",
    "Translate to French: coffee\ncafé ☕",
    "The cat sat on the mat, and then the cat went to sleep in the sun.",
    "There are three things to remember: the data, the model and the loss.",
    "Name a primary color: red, blue or yellow.",
]

# Reference sequences: encodings of these sentences, cut to these token counts (no padding).
REFERENCE_TEXTS = [
    "The cat sat on the mat, and then it slept.",
    "Direct preference optimization trains a policy from pairs of answers.",
    "def add(a, b):\n    return a + b\n\nThe reference model stays frozen while the policy is trained on the data.",
]
REFERENCE_LENGTHS = [7, 15, 30]

# Preference pairs for the `dpo-dist score` fixture (standard, non-conversational format).
PAIRS = [
    {  # prompt ends with a space: both completions merge with it ("Ġ" + "the..." -> "Ġthe...")
        "prompt": "My favourite season of the year is ",
        "chosen": "the summer.",
        "rejected": "the winter, when the days are short and cold and dark.",
    },
    {  # prompt ends with a space: the chosen merges across the boundary, the rejected (starts with "\n") does not
        "prompt": "The capital of France is ",
        "chosen": "the city of Paris.",
        "rejected": "\nLondon, which is the capital of England.",
    },
    {  # chosen already ends with the EOS string (no second EOS is appended); rejected longer
        "prompt": "Write a Python function that adds two numbers.\n",
        "chosen": "def add(a, b):\n    return a + b" + EOS,
        "rejected": "def add(a, b):\n    print(a - b)\n    return None",
    },
    {  # unicode text (multi-byte UTF-8 in byte-level BPE)
        "prompt": "Translate to French: coffee\n",
        "chosen": "café ☕",
        "rejected": "caffè — naïve 日本語 ✓",
    },
    {  # completions start with a space, prompt does not end with one
        "prompt": "Name a primary color:",
        "chosen": " red.",
        "rejected": " purple, or maybe green, or something else entirely.",
    },
]

NUM_TRAIN_STEPS = 100
TRAIN_LR = 3e-3
TRAIN_BATCH = 8
TRAIN_WINDOW = 32


# --------------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(bos_postprocessor: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = CORPUS + [p[k] for p in PAIRS for k in ("prompt", "chosen", "rejected")]
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    assert tok.get_vocab_size() == VOCAB_SIZE, tok.get_vocab_size()
    if bos_postprocessor:
        # As Llama 3: the post-processor prepends BOS (here BOS == EOS == <|endoftext|>).
        bos_id = tok.token_to_id(EOS)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{EOS}:0 $A:0",
            pair=f"{EOS}:0 $A:0 {EOS}:1 $B:1",
            special_tokens=[(EOS, bos_id)],
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=EOS,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=256,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, model_dir: Path) -> None:
    # save_jinja_files=False keeps the chat template inside tokenizer_config.json (no chat_template.jinja).
    tokenizer.save_pretrained(model_dir, save_jinja_files=False)
    assert not (model_dir / "chat_template.jinja").exists()
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert cfg.get("chat_template") == CHATML_TEMPLATE, "chat template missing from tokenizer_config.json"


# --------------------------------------------------------------------------------------------------
# Config forms


def per_layer_type_rope(cfg: dict) -> bool:
    """Gemma 3's `rope_parameters`: one dict per layer type (full_attention, sliding_attention)."""
    return isinstance(cfg.get("rope_parameters"), dict) and "full_attention" in cfg["rope_parameters"]


def config_to_v5(cfg: dict) -> dict:
    """transformers-5 form: `rope_parameters` (rope_type, rope_theta, scaling keys) and `dtype`."""
    c = copy.deepcopy(cfg)
    if per_layer_type_rope(c):
        pass  # already in the transformers-5 form
    elif "rope_parameters" not in c or c["rope_parameters"] is None:
        rp = dict(c.pop("rope_scaling", None) or {})
        if "type" in rp:
            rp.setdefault("rope_type", rp.pop("type"))
        rp.setdefault("rope_type", "default")
        rp["rope_theta"] = c.pop("rope_theta")
        c["rope_parameters"] = rp
    c.pop("rope_scaling", None)
    c.pop("rope_theta", None)
    if "torch_dtype" in c:
        c["dtype"] = c.pop("torch_dtype")
    return c


def config_to_v4(cfg: dict) -> dict:
    """transformers-4 form: top-level `rope_theta`, `rope_scaling` (null for default RoPE, else a dict with
    "rope_type"), `torch_dtype`."""
    c = config_to_v5(cfg)
    if per_layer_type_rope(c):
        # Gemma 3's transformers-4 keys: rope_theta and rope_scaling for the full layers, rope_local_base_freq for
        # the sliding ones.
        rp = c.pop("rope_parameters")
        full, local = dict(rp["full_attention"]), dict(rp["sliding_attention"])
        assert local == {"rope_type": "default", "rope_theta": local["rope_theta"]}, local
        c["rope_theta"] = full.pop("rope_theta")
        c["rope_local_base_freq"] = local["rope_theta"]
        c["rope_scaling"] = None if full == {"rope_type": "default"} else full
        c["torch_dtype"] = c.pop("dtype")
        return c
    rp = dict(c.pop("rope_parameters"))
    c["rope_theta"] = rp.pop("rope_theta")
    if "partial_rotary_factor" in rp:  # Phi-3's transformers-4 configs keep it at the top level
        c["partial_rotary_factor"] = rp.pop("partial_rotary_factor")
    c["rope_scaling"] = None if rp == {"rope_type": "default"} else rp
    c["torch_dtype"] = c.pop("dtype")
    return c


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------------
# Models


def build_config(name: str, vocab_size: int, bos_id: int, eos_id: int):
    common = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=256,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        attention_dropout=0.0,
        initializer_range=0.05,
    )
    if name == "llama-tied":
        return LlamaConfig(
            **common, intermediate_size=160, num_key_value_heads=2, tie_word_embeddings=True,
            rope_theta=10000.0, rms_norm_eps=1e-5,
        )
    if name == "qwen2-untied":
        return Qwen2Config(
            **common, intermediate_size=128, num_key_value_heads=2, tie_word_embeddings=False,
            rope_theta=1e6, rms_norm_eps=1e-6, use_sliding_window=False, sliding_window=None,
        )
    if name == "llama3-bf16":
        return LlamaConfig(
            **common, intermediate_size=128, num_key_value_heads=1, head_dim=32, tie_word_embeddings=False,
            rope_theta=500000.0, rms_norm_eps=1e-5,
            rope_scaling={
                "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
        )
    if name == "smollm3":
        c = dict(common, num_hidden_layers=4)
        # transformers' SmolLM3 reads no_rope_layers[i] as "layer i uses RoPE" (1 = RoPE, 0 = NoPE).
        return SmolLM3Config(
            **c, intermediate_size=128, num_key_value_heads=2, tie_word_embeddings=True,
            rope_theta=1e6, rms_norm_eps=1e-6, no_rope_layers=[1, 1, 1, 0], use_sliding_window=False,
            sliding_window=None,
        )
    if name == "mistral-window":
        # A window of 8 keys: shorter than every reference sequence but the first, and than the pairs.
        return MistralConfig(
            **common, intermediate_size=128, num_key_value_heads=2, tie_word_embeddings=False,
            rope_theta=1e6, rms_norm_eps=1e-6, sliding_window=8,
        )
    # The three below are smaller (hidden 32), so each fixture stays at a few hundred KB.
    small = dict(common, hidden_size=32, intermediate_size=64)
    if name == "qwen3":
        # head_dim 16 with 4 heads: q is 64 wide over a hidden size of 32 (head_dim decoupled from it).
        return Qwen3Config(
            **small, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True, rope_theta=1e6,
            rms_norm_eps=1e-6, attention_bias=False, use_sliding_window=False, sliding_window=None,
        )
    if name == "olmo2":
        return Olmo2Config(
            **small, num_key_value_heads=2, tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-6,
            attention_bias=False,
        )
    if name == "phi3":
        # 2 heads of 16 over 1 kv head; RoPE on the first 12 of each head's 16 dimensions (Phi-4-mini's 0.75).
        return Phi3Config(
            **dict(small, num_attention_heads=2), num_key_value_heads=1, tie_word_embeddings=False,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75},
            rms_norm_eps=1e-5, sliding_window=None, original_max_position_embeddings=256,
        )
    if name == "gemma3":
        # sliding_window_pattern 2: layers 0 and 2 slide (window 8, RoPE theta 1e4), layer 1 attends fully (theta
        # 1e6). head_dim 16 over hidden 32 / 4 heads, and query_pre_attn_scalar 24, so the attention scale differs
        # from head_dim^-0.5. Soft-capping stays off (Gemma 3's default).
        return Gemma3TextConfig(
            **dict(small, num_hidden_layers=3), num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
            rms_norm_eps=1e-6, query_pre_attn_scalar=24, sliding_window=8, sliding_window_pattern=2,
            rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
            hidden_activation="gelu_pytorch_tanh",
        )
    raise ValueError(name)


MODEL_CLASSES = {
    "llama-tied": LlamaForCausalLM,
    "qwen2-untied": Qwen2ForCausalLM,
    "llama3-bf16": LlamaForCausalLM,
    "smollm3": SmolLM3ForCausalLM,
    "qwen3": Qwen3ForCausalLM,
    "olmo2": Olmo2ForCausalLM,
    "phi3": Phi3ForCausalLM,
    "mistral-window": MistralForCausalLM,
    "gemma3": Gemma3ForCausalLM,
}
CONFIG_FORM = {"llama-tied": "v4", "qwen2-untied": "v5", "llama3-bf16": "v4", "smollm3": "v5",
               "qwen3": "v5", "olmo2": "v4", "phi3": "v5", "mistral-window": "v5",
               "gemma3": "v5"}
SAVE_DTYPE = {"llama3-bf16": torch.bfloat16}


def training_batches(tokenizer, seed: int):
    ids = []
    for text in CORPUS:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    data = torch.tensor(ids * 3, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    for _ in range(NUM_TRAIN_STEPS):
        starts = torch.randint(0, len(data) - TRAIN_WINDOW, (TRAIN_BATCH,), generator=g)
        yield torch.stack([data[s : s + TRAIN_WINDOW] for s in starts.tolist()])


def train_model(name: str, tokenizer, seed: int):
    torch.manual_seed(seed)
    config = build_config(name, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    config._attn_implementation = "eager"
    model = MODEL_CLASSES[name](config).to(torch.float32)
    if name == "qwen2-untied":
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith(".bias"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=TRAIN_LR, weight_decay=0.0)
    first = last = None
    for step, batch in enumerate(training_batches(tokenizer, seed)):
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    print(f"  trained {NUM_TRAIN_STEPS} steps: LM loss {first:.3f} -> {last:.3f}")
    model.eval()
    return model


def load_reference_model(model_dir: Path):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager")
    model.eval()
    return model


# --------------------------------------------------------------------------------------------------
# Reference logits / log-probs / gradients


def reference_sequences(tokenizer):
    seqs = []
    for text, n in zip(REFERENCE_TEXTS, REFERENCE_LENGTHS):
        ids = tokenizer(text)["input_ids"]  # the tokenizer's own special-token rule (BOS for llama3-bf16)
        assert len(ids) >= n, (text, len(ids), n)
        seqs.append(torch.tensor(ids[:n], dtype=torch.long))
    return seqs


def compute_reference(model, seqs, seed: int):
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(len(s) - 1, generator=g, dtype=torch.float64) for s in seqs]
    model.zero_grad(set_to_none=True)
    tensors = {}
    total = torch.zeros((), dtype=torch.float64)
    for i, (ids, w) in enumerate(zip(seqs, weights)):
        logits = model(input_ids=ids[None]).logits[0]  # (L, V) float64
        logp = torch.log_softmax(logits, dim=-1)[:-1].gather(1, ids[1:, None])[:, 0]  # (L-1,)
        total = total + (w * logp).sum()
        tensors[f"ids.{i}"] = ids.clone()
        tensors[f"logits.{i}"] = logits.detach().float().contiguous()
        tensors[f"logp.{i}"] = logp.detach().float().contiguous()
        tensors[f"weights.{i}"] = w.float().contiguous()
    total.backward()
    names = []
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        tensors[f"grad.{pname}"] = p.grad.detach().float().contiguous()
        names.append(pname)
    return tensors, total.item(), names


def logits_of(model_dir: Path, seqs):
    model = load_reference_model(model_dir)
    with torch.no_grad():
        return [model(input_ids=s[None]).logits[0] for s in seqs]


def check_config_forms(model_dir: Path, out_dir: Path, seqs, expected) -> None:
    """Load the model with config.v4.json and config.v5.json in turn; logits must be bit-identical."""
    for form in ("v4", "v5"):
        with tempfile.TemporaryDirectory() as tmp:
            tmp_dir = Path(tmp) / "model"
            shutil.copytree(model_dir, tmp_dir)
            shutil.copyfile(out_dir / f"config.{form}.json", tmp_dir / "config.json")
            got = logits_of(tmp_dir, seqs)
        diff = max((a - b).abs().max().item() for a, b in zip(got, expected))
        print(f"  config form {form}: max |logit diff| vs saved dir = {diff:.3g}")
        assert diff == 0.0, f"config.{form}.json gives different logits ({diff})"


# --------------------------------------------------------------------------------------------------
# Preference scoring, tokenized by the installed TRL


def trl_tokenize_pairs(tokenizer, pairs):
    """Tokenize by calling the installed TRL's own DPOTrainer._prepare_dataset (add EOS + tokenize_fn)."""
    from datasets import Dataset
    from trl import DPOTrainer

    stub = SimpleNamespace(_tokenizer=tokenizer)
    args = SimpleNamespace(dataset_num_proc=None, max_length=None, truncation_mode="keep_start")
    ds = Dataset.from_list([dict(p) for p in pairs])
    out = DPOTrainer._prepare_dataset(stub, ds, tokenizer, args, "fixture")
    return [
        {"prompt_ids": r["prompt_ids"], "chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]} for r in out
    ]


def mirrored_tokenize_pair(tokenizer, pair):
    """Line-by-line mirror of TRL 1.x tokenize_fn for a standard row, plus the per-completion boundaries."""
    from trl.data_utils import _tokenize, common_prefix_length

    eos = tokenizer.eos_token
    chosen = pair["chosen"] if pair["chosen"].endswith(eos) else pair["chosen"] + eos
    rejected = pair["rejected"] if pair["rejected"].endswith(eos) else pair["rejected"] + eos
    prompt_ids = _tokenize(tokenizer, pair["prompt"])["input_ids"]  # tokenizer(text=...): add_special_tokens=True
    pc = _tokenize(tokenizer, pair["prompt"] + chosen)["input_ids"]
    pr = _tokenize(tokenizer, pair["prompt"] + rejected)["input_ids"]
    start_c = common_prefix_length(prompt_ids, pc)
    start_r = common_prefix_length(prompt_ids, pr)
    n = min(start_c, start_r)
    trl_row = {"prompt_ids": prompt_ids[:n], "chosen_ids": pc[n:], "rejected_ids": pr[n:]}
    rule_row = {
        "tokenized_prompt_ids": prompt_ids,
        "chosen_prompt_ids": pc[:start_c], "chosen_ids": pc[start_c:],
        "rejected_prompt_ids": pr[:start_r], "rejected_ids": pr[start_r:],
    }
    return trl_row, rule_row


def completion_logp(model, prompt_ids, completion_ids) -> float:
    """Sum of log p(token) over the completion tokens, each predicted from all tokens before it (float64)."""
    ids = torch.tensor(prompt_ids + completion_ids, dtype=torch.long)
    assert len(prompt_ids) >= 1, "a completion token at position 0 has no prediction"
    with torch.no_grad():
        logits = model(input_ids=ids[None]).logits[0]
    logp = torch.log_softmax(logits, dim=-1)[:-1].gather(1, ids[1:, None])[:, 0]
    return logp[len(prompt_ids) - 1 :].sum().item()


def trl_collator_logps(model, row, pad_id):
    """TRL's own collator + the shifted completion-mask sum of DPOTrainer._compute_loss (float64 logits)."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    batch = DataCollatorForPreference(pad_token_id=pad_id)([row])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["input_ids"][:, 1:]
    mask = batch["completion_mask"][:, 1:].bool()
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, labels[..., None])[..., 0]
    per_seq = (logp * mask).sum(dim=1)
    return per_seq[0].item(), per_seq[1].item()


def trl_fused_head_logps(model, rows, pad_id):
    """DPOTrainer._compute_loss's own path: labels masked outside the completion, `fused_lm_head=True`, summed
    `log_probs`. TRL's chunked kernel works in float32 here, so it only confirms the float64 numbers to ~1e-5."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference
    from trl.trainer.utils import add_fused_lm_head

    fused = copy.deepcopy(model)
    add_fused_lm_head(fused)
    result = []
    for row in rows:
        batch = DataCollatorForPreference(pad_token_id=pad_id)([row])
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        with torch.no_grad():
            out = fused(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                        use_cache=False, fused_lm_head=True)
        per_seq = out.log_probs.sum(dim=1).tolist()
        result.append((per_seq[0], per_seq[1]))
    return result


def padded_batch_model(model, model_dir: Path):
    """The model for padded two-row batches. transformers' eager attention in float64 turns a query row whose
    sliding window holds only padding into NaN, which then spreads to the real rows through the padded keys; SDPA
    (what TRL runs) does not, so a sliding-window model is checked through SDPA."""
    if getattr(model.config, "sliding_window", None) is None:
        return model
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="sdpa").eval()


def make_scores(model, tokenizer, out_dir: Path, model_dir: Path):
    trl_rows = trl_tokenize_pairs(tokenizer, PAIRS)
    padded_model = padded_batch_model(model, model_dir)
    scores, rule_scores, tokens = [], [], []
    for pair, trl_row in zip(PAIRS, trl_rows):
        mirror_row, rule_row = mirrored_tokenize_pair(tokenizer, pair)
        assert mirror_row == trl_row, ("mirror differs from TRL", mirror_row, trl_row)
        p, c, r = trl_row["prompt_ids"], trl_row["chosen_ids"], trl_row["rejected_ids"]
        cl, rl = completion_logp(model, p, c), completion_logp(model, p, r)
        cl2, rl2 = trl_collator_logps(padded_model, trl_row, tokenizer.pad_token_id)
        agree = 1e-9 if padded_model is model else 1e-5  # SDPA on CPU in float64 differs from eager by ~1e-6
        assert abs(cl - cl2) < agree and abs(rl - rl2) < agree, (cl, cl2, rl, rl2)
        scores.append({
            "chosen_logps": cl, "rejected_logps": rl,
            "chosen_tokens": len(c), "rejected_tokens": len(r), "prompt_tokens": len(p),
            "tokenized_prompt_tokens": len(rule_row["tokenized_prompt_ids"]),
        })
        rcl = completion_logp(model, rule_row["chosen_prompt_ids"], rule_row["chosen_ids"])
        rrl = completion_logp(model, rule_row["rejected_prompt_ids"], rule_row["rejected_ids"])
        rule_scores.append({
            "chosen_logps": rcl, "rejected_logps": rrl,
            "chosen_tokens": len(rule_row["chosen_ids"]), "rejected_tokens": len(rule_row["rejected_ids"]),
            "prompt_tokens": len(rule_row["tokenized_prompt_ids"]),
            "chosen_prompt_tokens": len(rule_row["chosen_prompt_ids"]),
            "rejected_prompt_tokens": len(rule_row["rejected_prompt_ids"]),
        })
        tokens.append({**trl_row, "rule": rule_row})
    for s, (fc, fr) in zip(scores, trl_fused_head_logps(padded_model, trl_rows, tokenizer.pad_token_id)):
        assert abs(s["chosen_logps"] - fc) < 1e-4 and abs(s["rejected_logps"] - fr) < 1e-4, (s, fc, fr)
    with open(out_dir / "pairs.jsonl", "w") as f:
        for pair in PAIRS:
            f.write(json.dumps(pair, ensure_ascii=False) + "\n")
    for fname, rows in (("scores.jsonl", scores), ("scores.rule.jsonl", rule_scores)):
        with open(out_dir / fname, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    # One pair per line, ids kept on one line each, so the file stays readable.
    (out_dir / "pairs.tokens.json").write_text("[\n" + ",\n".join(json.dumps(t) for t in tokens) + "\n]\n")

    # The fixture must exercise what it claims to: cross-boundary merges and TRL's shared (min) boundary.
    merged = [len(t["prompt_ids"]) < len(t["rule"]["tokenized_prompt_ids"]) for t in tokens]
    shared_differs = [
        len(t["rule"]["chosen_prompt_ids"]) != len(t["rule"]["rejected_prompt_ids"]) for t in tokens
    ]
    assert merged[0] and merged[1], f"pairs 0/1 should merge across the prompt boundary: {merged}"
    assert shared_differs[1], "pair 1 should have different chosen/rejected boundaries"
    assert scores[1] != rule_scores[1]
    for i, (s, rs) in enumerate(zip(scores, rule_scores)):
        print(f"  pair {i}: TRL chosen {s['chosen_logps']:.4f} ({s['chosen_tokens']} tok) rejected "
              f"{s['rejected_logps']:.4f} ({s['rejected_tokens']} tok) prompt {s['prompt_tokens']}"
              f"/{s['tokenized_prompt_tokens']} | rule chosen {rs['chosen_logps']:.4f} rejected "
              f"{rs['rejected_logps']:.4f}")
    return tokens


# --------------------------------------------------------------------------------------------------


TRL_NOTES = (
    "Scores follow the installed TRL DPOTrainer for a standard (non-conversational) row, computed by calling "
    "DPOTrainer._prepare_dataset and DataCollatorForPreference themselves: (1) EOS string appended to chosen and to "
    "rejected unless the string already ends with it; (2) prompt, prompt+chosen, prompt+rejected each tokenized "
    "with tokenizer(text=...), i.e. add_special_tokens=True, so the tokenizer's post-processor adds BOS where it "
    "has one (llama3-bf16: every sequence starts with <|endoftext|> as BOS; the others add nothing); (3) ONE "
    "boundary for the pair: prompt_len = min(common_prefix(prompt, prompt+chosen), common_prefix(prompt, "
    "prompt+rejected)); prompt_ids = prompt[:prompt_len], chosen_ids = (prompt+chosen)[prompt_len:], rejected_ids "
    "= (prompt+rejected)[prompt_len:]. This differs from the stated rule (each completion starts where ITS OWN "
    "tokenization first differs from the prompt's) when only one completion merges across the boundary (pair 1 "
    "here): TRL then also scores the rejected sequence's unmerged prompt tail token(s) as completion. "
    "scores.rule.jsonl is the same computation with per-completion boundaries. (4) logps = sum over completion "
    "tokens of log_softmax(logits[t-1])[ids[t]] (the first completion token is predicted from the last prompt "
    "token); no truncation here (max_length=None; TRL's default 1024 changes nothing for these pairs). The sums "
    "are float64; they agree with TRL's own fused-LM-head path (add_fused_lm_head + log_probs.sum) to 1e-4. "
    "scores.jsonl: prompt_tokens = TRL's shared prompt_len, tokenized_prompt_tokens = len(tokenizer(prompt)). "
    "scores.rule.jsonl: prompt_tokens = len(tokenizer(prompt)); chosen_prompt_tokens / rejected_prompt_tokens = "
    "each completion's own start. pairs.tokens.json holds TRL's prompt_ids/chosen_ids/rejected_ids and, under "
    "'rule', the per-completion split."
)


def make_model(name: str, out_root: Path, seed: int) -> dict:
    print(f"== {name}")
    out_dir = out_root / name
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model_dir = out_dir / "model"
    model_dir.mkdir(parents=True)

    tokenizer = train_tokenizer(bos_postprocessor=(name == "llama3-bf16"))
    save_tokenizer(tokenizer, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)  # use exactly what was saved
    assert len(tokenizer) == VOCAB_SIZE

    model = train_model(name, tokenizer, seed)
    dtype = SAVE_DTYPE.get(name, torch.float32)
    model.to(dtype).save_pretrained(model_dir)

    # Configs in both forms; the model dir gets the stated form.
    written = json.loads((model_dir / "config.json").read_text())
    v4, v5 = config_to_v4(written), config_to_v5(written)
    assert v5["dtype"] == {torch.float32: "float32", torch.bfloat16: "bfloat16"}[dtype], v5["dtype"]
    write_json(out_dir / "config.v4.json", v4)
    write_json(out_dir / "config.v5.json", v5)
    form = CONFIG_FORM[name]
    write_json(model_dir / "config.json", v4 if form == "v4" else v5)

    stored = load_file(model_dir / "model.safetensors")
    stored_dtypes = sorted({str(t.dtype) for t in stored.values()})
    print(f"  model.safetensors: {len(stored)} tensors, dtypes {stored_dtypes}")

    # Reference numbers: reload the saved directory, float64 compute over the stored weights.
    ref_model = load_reference_model(model_dir)
    assert ref_model.config.vocab_size == len(tokenizer)
    seqs = reference_sequences(tokenizer)
    tensors, loss, param_names = compute_reference(ref_model, seqs, seed + 7)
    save_file(tensors, out_dir / "reference.safetensors")
    with torch.no_grad():
        expected = [ref_model(input_ids=s[None]).logits[0] for s in seqs]
    check_config_forms(model_dir, out_dir, seqs, expected)

    tokens = make_scores(ref_model, tokenizer, out_dir, model_dir)

    all_logits = torch.cat([tensors[f"logits.{i}"].flatten() for i in range(len(seqs))])
    stats = {
        "max_abs_logit": all_logits.abs().max().item(),
        "mean_per_position_logit_std": torch.stack(
            [tensors[f"logits.{i}"].std(dim=-1).mean() for i in range(len(seqs))]).mean().item(),
        "mean_per_position_logit_range": torch.stack(
            [(tensors[f"logits.{i}"].max(-1).values - tensors[f"logits.{i}"].min(-1).values).mean()
             for i in range(len(seqs))]).mean().item(),
        "mean_logp": torch.cat([tensors[f"logp.{i}"] for i in range(len(seqs))]).mean().item(),
    }
    bos_note = " Reference sequences start with BOS (the tokenizer's post-processor adds it)." \
        if name == "llama3-bf16" else ""
    reference = {
        "model": name,
        "num_sequences": len(seqs),
        "sequence_lengths": [len(s) for s in seqs],
        "loss": loss,
        "loss_definition": "sum_i sum_t weights.i[t] * logp.i[t], logp.i[t] = log_softmax(logits.i[t])[ids.i[t+1]]",
        "parameters": param_names,
        "stored_weight_dtypes": stored_dtypes,
        "logit_stats": stats,
        "versions": {
            "torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "trl": trl.__version__,
        },
        "config_form": form,
        "notes": (
            "Reference numbers: AutoModelForCausalLM.from_pretrained(model, dtype=float64, attn_implementation="
            "'eager') over the stored weights" + (" (bf16 weights, exactly upcast)" if dtype == torch.bfloat16 else "")
            + ", eval mode, each sequence alone (batch 1, no padding); float tensors stored as float32."
            + bos_note + " " + TRL_NOTES
        ),
    }
    write_json(out_dir / "reference.json", reference)
    print(f"  loss {loss:.6f}; max|logit| {stats['max_abs_logit']:.3f}; mean per-position logit std "
          f"{stats['mean_per_position_logit_std']:.3f}, range {stats['mean_per_position_logit_range']:.3f}")
    return reference


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=list(MODEL_CLASSES), default=None)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"tokenizers {tokenizers.__version__}, trl {trl.__version__}")
    names = args.only or list(MODEL_CLASSES)
    if args.only is None and args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        make_model(name, args.out, seed=1000 + 10 * list(MODEL_CLASSES).index(name))
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
