#!/usr/bin/env python3
"""Make the TRL DPOTrainer reference fixtures under Tests/DPOTestSupport/Fixtures/trl/.

Runs TRL's own `DPOTrainer` (CPU, fp32, one process) on a tiny fixture model for 10 optimizer steps per case
and records every metric TRL logs at every step, so the Swift trainer can be checked against TRL itself.
Cases (see CASES): sigmoid, ipo, hinge, robust (label_smoothing 0.1), sigmoid_accum (2 x 2 micro-batches, compared
with sigmoid), sigmoid_wd (weight decay 0.1), sigmoid_linear_warmup (linear, 3 warmup steps) on llama-tied, and
qwen2_sigmoid_wd on qwen2-untied (biases, untied head: which parameters get weight decay), qwen3_sigmoid,
olmo2_sigmoid, phi3_sigmoid and gemma3_sigmoid on the qwen3, olmo2, phi3 and gemma3 fixtures (each with weight decay
0.1), mistral_sigmoid on
mistral-window (sliding-window attention), sigmoid_eval (sigmoid
with an eval of all rows in one batch after steps 5 and 10), and sft: TRL's SFTTrainer on the rows' prompt and
chosen, with the same eval, for SFT's loss, entropy and mean_token_accuracy.
Each case is also re-run in plain PyTorch from SEMANTICS.md (no TRL) and the differences are recorded.

Writes:
  train.jsonl                 24 standard preference rows {"prompt", "chosen", "rejected"} (the training data)
  train.tokens.jsonl          per row: TRL's prompt_ids / chosen_ids / rejected_ids (llama-tied tokenizer) and the
                              reference model's summed completion log-probs (TRL's `compute_ref_log_probs`, batch 1)
  <case>.metrics.jsonl        one JSON object per optimizer step: "step" plus everything TRL passed to `on_log`
                              (not for sigmoid_eval, whose training logs are sigmoid's, checked equal)
  <case>.eval.jsonl           sigmoid_eval and sft: the eval logs (eval_loss, eval_entropy, ...) after steps 5, 10
  sft.train.jsonl             the SFT rows {"prompt", "completion"} (each train.jsonl row's prompt and chosen)
  <case>.config.json          the DPOConfig fields set here, the TRL/transformers defaults that matter, the
                              optimizer and its parameter groups, the rows of every step's batch (checked to be in
                              file order), and the library versions
  sigmoid.final.safetensors   the policy after the 10 steps of the `sigmoid` case (HF names, fp32; the tied
                              lm_head is not stored, as in the model fixture)
  SEMANTICS.md                (hand-written, not made by this script) what TRL 1.16 computes

The Swift tests never run this script; its outputs are committed. Rerunning it rewrites the generated files
(SEMANTICS.md is left alone). Deterministic with the same library versions (one thread, fixed seeds).

Needs: torch, transformers, trl, datasets (pulled in by trl), safetensors. No network (HF_HUB_OFFLINE=1).

Usage: python tools/make_trl_fixtures.py [--out DIR] [--only CASE ...]
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("ACCELERATE_USE_CPU", "1")

import datasets  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "Tests" / "DPOTestSupport" / "Fixtures"
MODELS = FIXTURES / "models"
DEFAULT_OUT = FIXTURES / "trl"
EOS = "<|endoftext|>"

# Standard (non-conversational) preference rows. The preference is checkable: correct arithmetic over wrong,
# a polite reply over a rude one, the right capital over the wrong one. Lengths vary so that every batch pads.
# Row 3's chosen already ends in the EOS string (TRL must not append a second one). Rows 9 and 17 have prompts
# ending in a space and one completion starting with "the", which BPE merges with that space into one token
# ("Ġthe") while the other completion ("London") leaves the space alone: TRL's one boundary per pair (the min of
# the two common prefixes) then drops the prompt's last token and scores it as the first token of the other
# completion.
ROWS = [
    ("Q: What is 2 + 3?\nA:", " 5.", " 7."),
    ("Q: What is 4 + 4?\nA:", " 8.", " 9, I think, but I am not sure about it."),
    ("User: Can you help me with my homework?\nAssistant:",
     " Of course! Tell me what the question is and we will work through it together.",
     " No. Do it yourself."),
    ("Q: What is 10 - 3?\nA:", " 7." + EOS, " 6."),
    ("User: Thank you for the answer.\nAssistant:", " You are welcome, happy to help!", " Whatever."),
    ("Q: What is 6 + 7?\nA:", " 13.", " 12."),
    ("User: Where is the train station?\nAssistant:",
     " It is two streets to the north, next to the old market. Have a nice trip!",
     " Find it yourself, I am busy."),
    ("Q: What is 9 - 4?\nA:", " 5.", " 4."),
    ("User: Could you repeat that, please?\nAssistant:",
     " Sure, I said the meeting starts at ten.",
     " I already told you. Listen next time."),
    ("The capital of France is ", "the city of Paris.", "London, which is a big city in England."),
    ("Q: What is 8 + 1?\nA:", " 9.", " 10."),
    ("User: I made a mistake in my report.\nAssistant:",
     " That happens to everyone. Let us look at it together and fix it.",
     " That was stupid."),
    ("Q: What is 5 + 5?\nA:", " 10.", " 55."),
    ("User: Good morning!\nAssistant:", " Good morning! How can I help you today?", " What do you want?"),
    ("Q: What is 7 - 2?\nA:", " 5.", " 3."),
    ("User: Can I ask a question?\nAssistant:", " Of course, please ask.", " If you must."),
    ("Q: What is 1 + 1?\nA:", " 2.", " 11."),
    ("The capital of England is ", "London.", "the city of Paris, I think."),
    ("Q: What is 12 - 5?\nA:", " 7.", " 8."),
    ("User: Please explain what a noun is.\nAssistant:",
     " A noun is a word for a person, a place or a thing, like teacher, city or book.",
     " Look it up."),
    ("Q: What is 2 + 2?\nA:", " 4.", " 5."),
    ("User: Sorry, I am late.\nAssistant:", " No problem, we have only just started.", " You are always late."),
    ("Q: What is 15 - 6?\nA:", " 9.", " 8. Or maybe 7."),
    ("User: Bye, see you tomorrow.\nAssistant:", " Goodbye, see you tomorrow!", " Finally."),
]

MAX_LENGTH = 128  # checked below to exceed every tokenized prompt+completion, so nothing is truncated
MAX_STEPS = 10

# Every case sets these DPOConfig fields; a case's own dict overrides them.
BASE_CONFIG = dict(
    max_steps=MAX_STEPS,
    learning_rate=1e-3,
    lr_scheduler_type="constant",
    warmup_steps=0,
    max_grad_norm=1e9,  # > 0, so Trainer calls clip_grad_norm_(…, 1e9): the clip factor is 1, grad_norm is pre-clip
    weight_decay=0.0,
    beta=0.1,
    loss_type=["sigmoid"],
    label_smoothing=0.0,
    logging_steps=1,
    seed=42,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=1,
    report_to=[],
    use_cpu=True,
    bf16=False,  # TRL's _BaseConfig turns bf16 (autocast) on by default, also on CPU
    fp16=False,
    activation_checkpointing=False,  # TRL's default gradient_checkpointing=True (its deprecated alias) turns it on;
    # no numeric effect in fp32, only slower
    max_length=MAX_LENGTH,
    truncation_mode="keep_start",
    precompute_ref_log_probs=False,
    padding_free=False,
    train_sampling_strategy="sequential",  # transformers 5.x: SequentialSampler, batches in file order
    dataloader_drop_last=False,
    dataloader_num_workers=0,
    save_strategy="no",
    disable_tqdm=True,
)

CASES = {
    "sigmoid": dict(model="llama-tied", config=dict()),
    "ipo": dict(model="llama-tied", config=dict(loss_type=["ipo"])),
    "hinge": dict(model="llama-tied", config=dict(loss_type=["hinge"])),
    "robust": dict(model="llama-tied", config=dict(loss_type=["robust"], label_smoothing=0.1)),
    "sigmoid_accum": dict(
        model="llama-tied", config=dict(per_device_train_batch_size=2, gradient_accumulation_steps=2)
    ),
    "sigmoid_wd": dict(model="llama-tied", config=dict(weight_decay=0.1)),
    "sigmoid_linear_warmup": dict(model="llama-tied", config=dict(lr_scheduler_type="linear", warmup_steps=3)),
    # Untied head and q/k/v biases: which parameters get weight decay (biases and norms do not).
    "qwen2_sigmoid_wd": dict(model="qwen2-untied", config=dict(weight_decay=0.1)),
    # Sliding-window attention (window 8, shorter than every row's prompt + completion).
    "mistral_sigmoid": dict(model="mistral-window", config=dict()),
    # The architectures with their own decoder parts: Qwen3 (per-head q/k norms, head_dim apart from the hidden
    # size), OLMo 2 (norms after the sublayers, q/k norms over the projection), Phi-3 (fused projections, partial
    # rotary). Weight decay 0.1, so the q/k norm weights' exclusion from it is part of the check.
    "qwen3_sigmoid": dict(model="qwen3", config=dict(weight_decay=0.1)),
    "olmo2_sigmoid": dict(model="olmo2", config=dict(weight_decay=0.1)),
    "phi3_sigmoid": dict(model="phi3", config=dict(weight_decay=0.1)),
    # Gemma 3: four (1+w) norms per layer, GeGLU, scaled embeddings, query_pre_attn_scalar, sliding (window 8) and
    # full layers with their own RoPE theta; weight decay 0.1 (none on its four norms and q/k norms).
    "gemma3_sigmoid": dict(model="gemma3", config=dict(weight_decay=0.1)),
    # TRL's default precision: bf16 autocast (matrix products in bf16, fp32 master weights). Its
    # independent check is the fp32 plain-PyTorch run, so it reports what bf16 changes.
    "sigmoid_bf16": dict(model="llama-tied", config=dict(bf16=True)),
    # `sigmoid` with an eval of all 24 rows in one batch after steps 5 and 10 (TRL averages eval metrics over eval
    # batches; one batch makes its eval_entropy and eval_mean_token_accuracy token-weighted over the eval set).
    "sigmoid_eval": dict(model="llama-tied", eval=True,
                         config=dict(eval_strategy="steps", eval_steps=5, per_device_eval_batch_size=len(ROWS))),
}
# SFTTrainer on {"prompt": p, "completion": chosen} of the same rows (completion_only_loss: TRL's default for
# prompt-completion data), for SFT's `entropy` and `mean_token_accuracy`, with the same one-batch eval.
SFT_CASES = {
    "sft": dict(model="llama-tied", eval=True,
                config=dict(eval_strategy="steps", eval_steps=5, per_device_eval_batch_size=len(ROWS))),
}
DPO_ONLY_FIELDS = {"beta", "loss_type", "label_smoothing", "precompute_ref_log_probs"}
SAVE_FINAL = {"sigmoid"}

# DPOConfig / TrainingArguments fields recorded in <case>.config.json under "trl_defaults_that_matter".
RECORDED_FIELDS = [
    "loss_type", "loss_weights", "beta", "label_smoothing", "f_divergence_type", "f_alpha_divergence_coef",
    "ld_alpha", "use_weighting", "discopop_tau", "max_length", "truncation_mode", "padding_free",
    "pad_to_multiple_of", "pad_token", "precompute_ref_log_probs", "precompute_ref_batch_size", "disable_dropout",
    "sync_ref_model", "ref_model_mixup_alpha", "ref_model_sync_steps", "router_aux_loss_coef",
    "learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "warmup_ratio",
    "optim", "optim_args", "adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay", "max_grad_norm",
    "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "num_train_epochs",
    "logging_steps", "logging_strategy", "logging_first_step", "logging_nan_inf_filter", "seed", "data_seed",
    "train_sampling_strategy", "dataloader_drop_last", "bf16", "fp16", "activation_checkpointing",
    "gradient_checkpointing",
    "average_tokens_across_devices", "include_num_input_tokens_seen", "remove_unused_columns",
]


def jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "value"):  # enums
        return value.value
    return str(value)


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


class LogRecorder(TrainerCallback):
    """Keeps every dict the Trainer logs (TRL's `log` has already merged its own metrics in)."""

    def __init__(self):
        self.steps = []
        self.evals = []
        self.other = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "loss" in logs:
            self.steps.append({"step": state.global_step, **logs})
        elif "eval_loss" in logs:
            self.evals.append({"step": state.global_step, **{k: v for k, v in logs.items()
                                                             if "runtime" not in k and "per_second" not in k}})
        else:
            self.other.append({"step": state.global_step, **logs})


def preference_key(e):
    return tuple(e["prompt_ids"]), tuple(e["chosen_ids"]), tuple(e["rejected_ids"])


class RecordingCollator:
    """Wraps TRL's collator and records which dataset rows each micro-batch holds, in the order they are drawn
    (`row_of` maps `key(example)` to the row)."""

    def __init__(self, collator, row_of, key=preference_key):
        self.collator = collator
        self.row_of = row_of
        self.key = key
        self.batches = []

    def __call__(self, examples):
        self.batches.append(
            [self.row_of[self.key(e)] for e in examples]
        )
        return self.collator(examples)


def load_policy(model_name: str):
    model_dir = MODELS / model_name / "model"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model_dir, model, tokenizer


def run_case(name: str, case: dict, dataset: Dataset, workdir: Path):
    model_dir, model, tokenizer = load_policy(case["model"])
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    set_fields = {**BASE_CONFIG, **case["config"]}
    args = DPOConfig(output_dir=str(workdir / name), **set_fields)
    recorder = LogRecorder()
    trainer = DPOTrainer(
        model=model, ref_model=None, args=args, train_dataset=dataset, processing_class=tokenizer,
        eval_dataset=dataset if case.get("eval") else None, callbacks=[recorder],
    )
    trainer.remove_callback(PrinterCallback)  # the recorder keeps the logs; no console dump

    # The prepared dataset keeps the file order (and drops nothing: max_length exceeds every prompt).
    prepared = trainer.train_dataset
    if len(prepared) != len(ROWS):
        sys.exit(f"{name}: TRL kept {len(prepared)} of {len(ROWS)} rows; raise MAX_LENGTH")
    row_of = {}
    for i, ex in enumerate(prepared):
        key = preference_key(ex)
        if key in row_of:
            sys.exit(f"rows {row_of[key]} and {i} tokenize identically; make them differ")
        row_of[key] = i
        longest = max(len(ex["prompt_ids"]) + len(ex["chosen_ids"]), len(ex["prompt_ids"]) + len(ex["rejected_ids"]))
        if longest > MAX_LENGTH:
            sys.exit(f"{name}: row {i} has {longest} tokens > max_length {MAX_LENGTH}; raise MAX_LENGTH")
    collator = RecordingCollator(trainer.data_collator, row_of)
    trainer.data_collator = collator

    # ref_model=None with a full (non-PEFT) model: TRL loads a second copy from model.config._name_or_path.
    ref = trainer.ref_model
    ref_checks = {
        "ref_model_is_separate_object": ref is not None and ref is not trainer.model,
        "ref_model_class": type(ref).__name__,
        "ref_model_loaded_from": str(getattr(ref.config, "_name_or_path", "")).replace(str(REPO) + "/", ""),
        "ref_params_requires_grad": any(p.requires_grad for p in ref.parameters()),
        "ref_in_training_mode": ref.training,
    }
    ref_params = dict(ref.named_parameters())
    ref_checks["ref_equals_initial_policy_max_abs_diff"] = max(
        (ref_params[n] - p).abs().max().item() for n, p in initial.items()
    )

    start = time.time()
    trainer.train()
    seconds = time.time() - start

    ga = args.gradient_accumulation_steps
    # The eval's batches (all rows at once) go through the same collator; only the training batches count here.
    micro = [b for b in collator.batches if not case.get("eval") or len(b) != len(ROWS)][: MAX_STEPS * ga]
    step_rows = [sum(micro[s * ga:(s + 1) * ga], []) for s in range(MAX_STEPS)]
    per_epoch = [list(range(i, i + args.per_device_train_batch_size * ga))
                 for i in range(0, len(ROWS), args.per_device_train_batch_size * ga)]
    expected = (per_epoch * 2)[:MAX_STEPS]
    if step_rows != expected:
        sys.exit(f"{name}: batches are not in file order: {step_rows}")
    if len(recorder.steps) != MAX_STEPS or [m["step"] for m in recorder.steps] != list(range(1, MAX_STEPS + 1)):
        sys.exit(f"{name}: expected one log per step, got steps {[m['step'] for m in recorder.steps]}")

    ref_checks["ref_unchanged_after_training_max_abs_diff"] = max(
        (ref_params[n] - p).abs().max().item() for n, p in initial.items()
    )
    final = {n: p.detach().clone().contiguous() for n, p in trainer.model.named_parameters()}

    opt = trainer.optimizer
    opt = getattr(opt, "optimizer", opt)  # accelerate's AcceleratedOptimizer wraps the torch optimizer
    names_of = {id(p): n for n, p in trainer.model.named_parameters()}
    groups = []
    for g in opt.param_groups:
        groups.append({
            **{k: jsonable(v) for k, v in g.items() if k not in ("params", "lr", "initial_lr")},
            "initial_lr": jsonable(g.get("initial_lr")),
            "params": [names_of[id(p)] for p in g["params"]],
        })
    decay = trainer.get_decay_parameter_names(trainer.model)

    config = {
        "case": name,
        "model": str(model_dir.relative_to(REPO)),
        "dataset": "train.jsonl (file order, every row kept)",
        "dpo_config_set": jsonable(set_fields),
        "trl_defaults_that_matter": {f: jsonable(getattr(args, f, "absent")) for f in RECORDED_FIELDS},
        "max_prompt_length": "absent in TRL " + trl.__version__
        if not hasattr(args, "max_prompt_length") else args.max_prompt_length,
        "world_size": args.world_size,
        "device": str(args.device),
        "global_batch_pairs": args.per_device_train_batch_size * ga * args.world_size,
        "optimizer": {
            "class": f"{type(opt).__module__}.{type(opt).__name__}",
            "param_groups": groups,
            "decay_parameter_names": decay,
        },
        "lr_scheduler": {
            "class": f"{type(trainer.lr_scheduler).__module__}.{type(trainer.lr_scheduler).__name__}",
            "logged_learning_rate_per_step": [m["learning_rate"] for m in recorder.steps],
            "note": "the logged learning_rate of step k is the lr the k-th optimizer.step() used "
                    "(read after optimizer.step(), before lr_scheduler.step())",
        },
        "reference_model": ref_checks,
        "step_rows": step_rows,
        "micro_batch_rows": micro,
        "other_logs": [{k: v for k, v in o.items() if "runtime" not in k and "per_second" not in k}
                       for o in recorder.other],
        "versions": versions(),
    }
    return trainer, recorder, config, final, seconds


def versions():
    return {
        "python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
        "trl": trl.__version__, "tokenizers": tokenizers.__version__, "datasets": datasets.__version__,
        "torch_num_threads": torch.get_num_threads(),
    }


def token_rows(trainer):
    """TRL's tokenization of each row and the reference model's summed completion log-probs (batch of one)."""
    out = []
    for i, ex in enumerate(trainer.train_dataset):
        example = {k: ex[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")}
        batch = trainer.data_collator.collator([example]) if isinstance(trainer.data_collator, RecordingCollator) \
            else trainer.data_collator([example])
        chosen, rejected = trainer.compute_ref_log_probs(trainer.ref_model, batch)
        out.append({"row": i, **example,
                    "ref_chosen_logps": chosen.item(), "ref_rejected_logps": rejected.item()})
    return out


def compare(a_steps, b_steps, a_final, b_final):
    keys = sorted(set(a_steps[0]) & set(b_steps[0]) - {"step", "epoch"})
    diffs = {}
    for k in keys:
        diffs[k] = max(abs(x[k] - y[k]) for x, y in zip(a_steps, b_steps))
    diffs["final_params_max_abs_diff"] = max((a_final[n] - b_final[n]).abs().max().item() for n in a_final)
    return diffs


# ---------------------------------------------------------------------------------------------------------------
# Independent check: the same training written out in plain PyTorch from SEMANTICS.md (no TRL, no Trainer, the
# model's ordinary forward, torch.optim.AdamW single-tensor). If this matches TRL's logs, SEMANTICS.md describes
# everything the Swift trainer has to reproduce.

NO_DECAY = re.compile(r"bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)")


def lr_factor(kind: str, k: int, warmup: int, total: int) -> float:
    """Multiplier of the k-th optimizer step (k = 0 for the first)."""
    if kind == "constant":
        return 1.0
    if kind == "linear":
        return k / max(1, warmup) if k < warmup else max(0.0, (total - k) / max(1, total - warmup))
    raise ValueError(kind)


def plain_loss(kind, beta, eps, chosen_lr, rejected_lr, chosen_len, rejected_len):
    delta = chosen_lr - rejected_lr
    logsig = torch.nn.functional.logsigmoid
    if kind == "sigmoid":
        return -logsig(beta * delta)
    if kind == "hinge":
        return torch.relu(1 - beta * delta)
    if kind == "ipo":
        return (chosen_lr / chosen_len - rejected_lr / rejected_len - 1 / (2 * beta)) ** 2
    if kind == "robust":
        return (-(1 - eps) * logsig(beta * delta) + eps * logsig(-beta * delta)) / (1 - 2 * eps)
    raise ValueError(kind)


def plain_dpo(case: dict, tokens: list) -> tuple[list, dict]:
    cfg = {**BASE_CONFIG, **case["config"]}
    model_dir = MODELS / case["model"] / "model"
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
    named = list(policy.named_parameters())  # tied weights appear once
    opt = torch.optim.AdamW(
        [{"params": [p for n, p in named if not NO_DECAY.search(n.lower())], "weight_decay": cfg["weight_decay"]},
         {"params": [p for n, p in named if NO_DECAY.search(n.lower())], "weight_decay": 0.0}],
        lr=cfg["learning_rate"], betas=(0.9, 0.999), eps=1e-8, foreach=False, fused=False,
    )
    (kind,) = cfg["loss_type"]
    beta, eps = cfg["beta"], cfg["label_smoothing"]
    micro, ga = cfg["per_device_train_batch_size"], cfg["gradient_accumulation_steps"]
    batch = micro * ga
    total_tokens = 0
    steps = []
    for k in range(MAX_STEPS):
        for g in opt.param_groups:
            g["lr"] = cfg["learning_rate"] * lr_factor(cfg["lr_scheduler_type"], k, cfg["warmup_steps"], MAX_STEPS)
        opt.zero_grad()
        per_micro = defaultdict(list)
        loss_sum = 0.0
        for m in range(ga):
            rows = [tokens[(k * batch + m * micro + i) % len(tokens)] for i in range(micro)]
            seqs = [r["prompt_ids"] + r[c] for c in ("chosen_ids", "rejected_ids") for r in rows]
            comp = [[0] * len(r["prompt_ids"]) + [1] * len(r[c]) for c in ("chosen_ids", "rejected_ids") for r in rows]
            width = max(map(len, seqs))
            ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs])
            attn = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
            cmask = torch.tensor([c + [0] * (width - len(c)) for c in comp])
            target, tmask = ids[:, 1:], cmask[:, 1:].float()

            logits = policy(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
            logp_all = torch.log_softmax(logits, dim=-1)
            tok_logp = logp_all.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            logps = (tok_logp * tmask).sum(1)
            with torch.no_grad():
                ref_logits = ref(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
                ref_logps = (torch.log_softmax(ref_logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
                             * tmask).sum(1)
            chosen_logps, rejected_logps = logps.chunk(2)
            chosen_lr, rejected_lr = (logps - ref_logps).chunk(2)
            lengths = cmask.sum(1).clamp(min=1).float()
            loss = plain_loss(kind, beta, eps, chosen_lr, rejected_lr, *lengths.chunk(2)).mean()
            (loss / ga).backward()
            loss_sum += (loss / ga).item()

            with torch.no_grad():
                cm, rm = tmask.chunk(2)
                mean_logit = logits.mean(-1)  # mean over the vocabulary at each position
                mc, mr = mean_logit.chunk(2)
                entropy = -(logp_all.exp() * logp_all).sum(-1)
                top1 = (logits.argmax(-1) == target).float()
                rc, rr = beta * chosen_lr.detach(), beta * rejected_lr.detach()
                per_micro["entropy"].append(((entropy * tmask).sum() / tmask.sum()).item())
                per_micro["logits/chosen"].append(((mc * cm).sum() / cm.sum()).item())
                per_micro["logits/rejected"].append(((mr * rm).sum() / rm.sum()).item())
                per_micro["mean_token_accuracy"].append(((top1.chunk(2)[0] * cm).sum() / cm.sum()).item())
                per_micro["rewards/chosen"].append(rc.mean().item())
                per_micro["rewards/rejected"].append(rr.mean().item())
                per_micro["rewards/accuracies"].append((rc > rr).float().mean().item())
                per_micro["rewards/margins"].append((rc - rr).mean().item())
                per_micro["logps/chosen"].append(chosen_logps.mean().item())
                per_micro["logps/rejected"].append(rejected_logps.mean().item())
                total_tokens += int(attn.sum())
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg["max_grad_norm"]).item()
        lr_used = opt.param_groups[0]["lr"]
        opt.step()
        steps.append({"step": k + 1, "loss": loss_sum, "grad_norm": grad_norm, "learning_rate": lr_used,
                      "num_tokens": float(total_tokens),
                      **{key: sum(v) / len(v) for key, v in per_micro.items()}})
    return steps, {n: p.detach() for n, p in policy.named_parameters()}


# ---------------------------------------------------------------------------------------------------------------
# SFT: TRL's SFTTrainer, and the same steps in plain PyTorch (loss = mean NLL over the global batch's completion
# tokens; entropy and top-1 accuracy token-weighted over them).

SFT_ROWS = [{"prompt": p, "completion": c} for p, c, _ in ROWS]


def sft_trainer(name: str, model, tokenizer, case: dict, workdir: Path):
    """TRL's SFTTrainer on SFT_ROWS (BASE_CONFIG without the DPO fields, then the case's), recording its logs and
    which rows each micro-batch holds; refuses a dataset TRL changed."""
    from trl import SFTConfig, SFTTrainer

    set_fields = {**{k: v for k, v in BASE_CONFIG.items() if k not in DPO_ONLY_FIELDS}, **case["config"]}
    args = SFTConfig(output_dir=str(workdir / name), **set_fields)
    recorder = LogRecorder()
    dataset = Dataset.from_list(SFT_ROWS)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         eval_dataset=dataset if case.get("eval") else None, callbacks=[recorder])
    trainer.remove_callback(PrinterCallback)
    prepared = trainer.train_dataset
    if len(prepared) != len(SFT_ROWS) or len({tuple(e["input_ids"]) for e in prepared}) != len(SFT_ROWS):
        sys.exit(f"{name}: TRL kept {len(prepared)} of {len(SFT_ROWS)} rows, or two tokenize identically")
    row_of = {tuple(e["input_ids"]): i for i, e in enumerate(prepared)}
    collator = RecordingCollator(trainer.data_collator, row_of, key=lambda e: tuple(e["input_ids"]))
    trainer.data_collator = collator
    return trainer, args, set_fields, recorder, collator


def sft_steps_in_file_order(name: str, args, recorder, collator) -> list:
    """The rows of each step's micro-batch after training, checked to be the file's order, one log per step."""
    micro = [b for b in collator.batches if len(b) == args.per_device_train_batch_size][:MAX_STEPS]
    expected = [[(k * args.per_device_train_batch_size + i) % len(SFT_ROWS)
                 for i in range(args.per_device_train_batch_size)] for k in range(MAX_STEPS)]
    if micro != expected:
        sys.exit(f"{name}: batches are not in file order: {micro}")
    if [m["step"] for m in recorder.steps] != list(range(1, MAX_STEPS + 1)):
        sys.exit(f"{name}: expected one log per step, got steps {[m['step'] for m in recorder.steps]}")
    return micro


def run_sft_case(name: str, case: dict, workdir: Path, out: Path) -> None:
    model_dir, model, tokenizer = load_policy(case["model"])
    trainer, args, set_fields, recorder, collator = sft_trainer(name, model, tokenizer, case, workdir)
    prepared = trainer.train_dataset
    trainer.train()
    micro = sft_steps_in_file_order(name, args, recorder, collator)
    # The prepared rows carry `labels` (−100 outside the completion) rather than a completion mask.
    tokens = [{"input_ids": e["input_ids"], "completion_mask": [int(x != -100) for x in e["labels"]]} for e in prepared]
    plain_steps, plain_evals = plain_sft(case, tokens)
    config = {
        "case": name,
        "model": str(model_dir.relative_to(REPO)),
        "dataset": "train.jsonl's prompt and chosen as {prompt, completion} (sft.train.jsonl), file order; "
                   "the eval set is the same rows in one batch",
        "sft_config_set": jsonable(set_fields),
        "trl_defaults_that_matter": {f: jsonable(getattr(args, f, "absent")) for f in [
            "completion_only_loss", "assistant_only_loss", "loss_type", "packing", "padding_free", "max_length",
            "truncation_mode", "eos_token", "average_tokens_across_devices", "per_device_eval_batch_size",
            "eval_strategy", "eval_steps"]},
        "step_rows": micro,
        "independent_check": {
            "what": "the same 10 steps and evals in plain PyTorch (model forward + log_softmax over the completion "
                    "tokens, torch.optim.AdamW single-tensor); differences from TRL",
            **diff_report(recorder.steps, plain_steps, None, None),
            "eval": diff_report(recorder.evals, plain_evals, None, None),
        },
        "versions": versions(),
    }
    write_jsonl(out / f"{name}.train.jsonl", SFT_ROWS)
    write_jsonl(out / f"{name}.metrics.jsonl", recorder.steps)
    write_jsonl(out / f"{name}.eval.jsonl", recorder.evals)
    write_json(out / f"{name}.config.json", config)
    check = config["independent_check"]
    print(f"{name:22s} loss step1 {recorder.steps[0]['loss']:.6f} step10 {recorder.steps[-1]['loss']:.6f}  | plain "
          f"PyTorch vs TRL: entropy {check['entropy']['max_rel']:.1e} rel, mean_token_accuracy "
          f"{check['mean_token_accuracy']['max_abs']:.1e}, eval_entropy {check['eval']['eval_entropy']['max_rel']:.1e}")


def plain_sft(case: dict, tokens: list) -> tuple[list, list]:
    cfg = {**BASE_CONFIG, **case["config"]}
    model_dir = MODELS / case["model"] / "model"
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg["learning_rate"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0, foreach=False, fused=False)
    batch = cfg["per_device_train_batch_size"]

    def forward(rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.tensor([r["input_ids"] + [0] * (width - len(r["input_ids"])) for r in rows])
        attn = torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows])
        cmask = torch.tensor([r["completion_mask"] + [0] * (width - len(r["input_ids"])) for r in rows])
        logits = policy(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
        target, mask = ids[:, 1:], cmask[:, 1:].float()
        logp = torch.log_softmax(logits, -1)
        nll = -(logp.gather(-1, target.unsqueeze(-1)).squeeze(-1) * mask).sum() / mask.sum()
        with torch.no_grad():
            entropy = (-(logp.exp() * logp).sum(-1) * mask).sum() / mask.sum()
            accuracy = ((logits.argmax(-1) == target).float() * mask).sum() / mask.sum()
        return nll, {"entropy": entropy.item(), "mean_token_accuracy": accuracy.item()}

    steps, evals = [], []
    for k in range(MAX_STEPS):
        opt.zero_grad()
        nll, metrics = forward([tokens[(k * batch + i) % len(tokens)] for i in range(batch)])
        nll.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg["max_grad_norm"]).item()
        opt.step()
        steps.append({"step": k + 1, "loss": nll.item(), "grad_norm": grad_norm, **metrics})
        if (k + 1) % cfg["eval_steps"] == 0:
            with torch.no_grad():
                eval_nll, eval_metrics = forward(tokens)
            evals.append({"step": k + 1, "eval_loss": eval_nll.item(),
                          **{f"eval_{key}": v for key, v in eval_metrics.items()}})
    return steps, evals


def diff_report(trl_steps, plain_steps, trl_final, plain_final) -> dict:
    report = {}
    for key in plain_steps[0]:
        if key == "step":
            continue
        a = [s[key] for s in trl_steps]
        b = [s[key] for s in plain_steps]
        report[key] = {"max_abs": max(abs(x - y) for x, y in zip(a, b)),
                       "max_rel": max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b))}
    if trl_final is not None:
        report["final_params"] = {"max_abs": max((trl_final[n] - plain_final[n]).abs().max().item()
                                                 for n in trl_final)}
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", choices=sorted([*CASES, *SFT_CASES]), help="run only these cases")
    opts = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    datasets.disable_progress_bars()
    datasets.disable_caching()  # nothing written into ~/.cache, no stale cache between runs

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in ROWS])
    dataset = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in ROWS])

    names = opts.only or [*CASES, *SFT_CASES]
    if {"sigmoid_accum", "sigmoid_eval"} & set(names) and "sigmoid" not in names:
        names = ["sigmoid", *names]  # sigmoid_accum and sigmoid_eval are compared with sigmoid
    sft_names = [n for n in SFT_CASES if n in names]
    names = [n for n in CASES if n in names]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in sft_names:
            run_sft_case(name, SFT_CASES[name], Path(tmp), out)
        for name in names:
            trainer, recorder, config, final, seconds = run_case(name, CASES[name], dataset, Path(tmp))
            steps = recorder.steps
            results[name] = (steps, final)
            tokens = [{k: ex[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for ex in trainer.train_dataset]
            plain_steps, plain_final = plain_dpo(CASES[name], tokens)
            config["independent_check"] = {
                "what": "the same 10 steps in plain PyTorch following SEMANTICS.md (model forward + log_softmax, "
                        "torch.optim.AdamW single-tensor, own lr schedule and decay groups); differences from TRL",
                **diff_report(steps, plain_steps, final, plain_final),
            }
            if name == "sigmoid_accum":
                config["compare_to_sigmoid"] = compare(steps, results["sigmoid"][0], final, results["sigmoid"][1])
            if CASES[name].get("eval"):
                # Its training logs are sigmoid's (the eval changes nothing there): only the evals are written.
                if "sigmoid" in results and steps != results["sigmoid"][0]:
                    sys.exit(f"{name}: the eval changed the training logs")
                write_jsonl(out / f"{name}.eval.jsonl", recorder.evals)
            else:
                write_jsonl(out / f"{name}.metrics.jsonl", steps)
            write_json(out / f"{name}.config.json", config)
            if name in SAVE_FINAL:
                save_file(final, str(out / f"{name}.final.safetensors"), metadata={"format": "pt"})
            if name == "sigmoid":
                write_jsonl(out / "train.tokens.jsonl", token_rows(trainer))
            check = config["independent_check"]
            worst = max((k for k in check if k not in ("what", "final_params")), key=lambda k: check[k]["max_rel"])
            print(f"{name:22s} {seconds:4.1f}s  loss step1 {steps[0]['loss']:.6f} step10 {steps[-1]['loss']:.6f}"
                  f"  | plain PyTorch vs TRL: loss {check['loss']['max_abs']:.1e}, final params "
                  f"{check['final_params']['max_abs']:.1e}, worst rel {worst} {check[worst]['max_rel']:.1e}")
            if "compare_to_sigmoid" in config:
                c = config["compare_to_sigmoid"]
                print(f"  sigmoid_accum vs sigmoid (TRL): loss {c['loss']:.1e}, grad_norm {c['grad_norm']:.1e}, "
                      f"final params {c['final_params_max_abs_diff']:.1e}, logits/chosen {c['logits/chosen']:.1e}")

if __name__ == "__main__":
    main()
