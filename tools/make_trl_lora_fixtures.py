#!/usr/bin/env python3
"""Make the LoRA fixtures under Tests/DPOTestSupport/Fixtures/trl/lora/: TRL 1.16's DPOTrainer with PEFT 0.21.

Three starting adapters, each PEFT-initialised (A Kaiming-uniform, B zero) and then
given random nonzero B values, so the adapted model differs from the base at step 1, saved with
`PeftModel.save_pretrained`:
  initial-all-linear/   r 8, lora_alpha 16, target_modules all-linear (every decoder linear, not the LM head)
  initial-qv-rslora/    r 4, lora_alpha 8, target_modules [q_proj, v_proj], use_rslora (scaling alpha/sqrt(r))
  initial-phi3-all-linear/  on the phi3 fixture: r 4, lora_alpha 8, all-linear, which on Phi-3 is the fused
                        qkv_proj and gate_up_proj (one A and one B each, B's rows spanning q, k and v, or gate and
                        up) and o_proj, down_proj
The first two adapt the llama-tied fixture model. Each adapter_config.json names its base as
"../../models/<model>/model" (relative to the adapter directory's parent, as dpo-dist resolves it).

Cases: 10 DPO steps of TRL's DPOTrainer (CPU, fp32, one process, file order, the BASE_CONFIG of
make_trl_fixtures.py, lora_dropout 0) on a `PeftModel.from_pretrained(base, adapter, is_trainable=True)`, with
ref_model None: TRL 1.16 then copies the starting adapter into a frozen "ref" adapter, so the reference is the
starting adapter (recorded in <case>.config.json):
  sigmoid        from initial-all-linear
  ipo            from initial-qv-rslora
  phi3_sigmoid   from initial-phi3-all-linear
  sigmoid_bf16   from initial-all-linear, bf16=True (TRL's default autocast)
and one SFT case: 10 steps of TRL's SFTTrainer (the SFT settings of make_trl_fixtures.py: completion-only loss on
each row's prompt and chosen, sft.train.jsonl there) on the same kind of trainable PeftModel:
  sft            from initial-all-linear

Writes (into Tests/DPOTestSupport/Fixtures/trl/lora/):
  initial-*/                      the starting adapters (adapter_config.json, adapter_model.safetensors)
  <case>.metrics.jsonl            one JSON object per optimizer step: everything TRL logged
  <case>.final.safetensors        the trained "default" adapter, PEFT's saved names (get_peft_model_state_dict)
  <case>.config.json              the DPOConfig fields, the reference checks, versions
  initial-all-linear.logps.jsonl  per train row: PEFT's summed completion log-probs of chosen and rejected under
                                  initial-all-linear (PeftModel.from_pretrained, eval, batch 1): what dpo-dist's
                                  loading of a PEFT adapter must reproduce; initial-phi3-all-linear.logps.jsonl the
                                  same for the Phi-3 adapter

Reuses the rows, tokenization and trainer settings of make_trl_fixtures.py (train.jsonl there). The Swift tests
never run this script. Deterministic with the same library versions (one thread, fixed seeds).

Usage: ~/venvs/dpo-dist-tools/bin/python tools/make_trl_lora_fixtures.py [--only CASE ...]
"""

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_trl_fixtures as base_fixtures  # noqa: E402  (sets the offline environment first)
from make_trl_fixtures import (  # noqa: E402
    BASE_CONFIG, MAX_STEPS, MODELS, REPO, ROWS, LogRecorder, RecordingCollator, jsonable, preference_key, write_json,
    write_jsonl,
)

import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

OUT = base_fixtures.DEFAULT_OUT / "lora"
ADAPTERS = {
    "initial-all-linear": dict(r=8, lora_alpha=16, target_modules="all-linear", use_rslora=False, seed=1),
    "initial-qv-rslora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], use_rslora=True, seed=2),
    "initial-phi3-all-linear": dict(model="phi3", r=4, lora_alpha=8, target_modules="all-linear", use_rslora=False,
                                    seed=3),
}
CASES = {
    "sigmoid": dict(adapter="initial-all-linear", config=dict()),
    "ipo": dict(adapter="initial-qv-rslora", config=dict(loss_type=["ipo"])),
    "phi3_sigmoid": dict(adapter="initial-phi3-all-linear", config=dict()),
    # TRL's default precision, bf16 autocast, on the sigmoid case: a bf16 run is compared with it and with sigmoid.
    "sigmoid_bf16": dict(adapter="initial-all-linear", config=dict(bf16=True)),
}


SFT_CASES = {
    "sft": dict(adapter="initial-all-linear", config=dict()),
}


def base_of(adapter: str) -> Path:
    return MODELS / ADAPTERS[adapter].get("model", "llama-tied") / "model"


def load_base(adapter: str):
    return AutoModelForCausalLM.from_pretrained(base_of(adapter), dtype=torch.float32, attn_implementation="eager")


def make_adapter(name: str, spec: dict) -> None:
    torch.manual_seed(spec["seed"])
    config = LoraConfig(task_type="CAUSAL_LM", r=spec["r"], lora_alpha=spec["lora_alpha"], lora_dropout=0.0,
                        target_modules=spec["target_modules"], bias="none", use_rslora=spec["use_rslora"])
    model = get_peft_model(load_base(name), config)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn_like(p))  # nonzero: the adapter changes the model from step 1
    directory = OUT / name
    model.save_pretrained(directory)
    config_path = directory / "adapter_config.json"
    saved = json.loads(config_path.read_text())
    # relative to the adapter directory's parent (OUT)
    saved["base_model_name_or_path"] = f"../../models/{spec.get('model', 'llama-tied')}/model"
    if isinstance(saved["target_modules"], list):
        saved["target_modules"] = sorted(saved["target_modules"])  # PEFT writes a set, in hash order
    config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    (directory / "README.md").unlink(missing_ok=True)  # PEFT's model card template: not needed


def peft_logps(adapter: str):
    """PEFT's own loading of the adapter: summed completion log-probs per row, TRL's tokenization, batch 1."""
    from check_saved_adapter import summed_logps

    tokenizer = AutoTokenizer.from_pretrained(base_of(adapter))
    model = PeftModel.from_pretrained(load_base(adapter), OUT / adapter).eval()
    args = DPOConfig(output_dir=tempfile.mkdtemp(), **BASE_CONFIG)
    dataset = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in ROWS])
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    return summed_logps(model, trainer)


def run_case(name: str, case: dict, dataset: Dataset, workdir: Path):
    tokenizer = AutoTokenizer.from_pretrained(base_of(case["adapter"]))
    model = PeftModel.from_pretrained(load_base(case["adapter"]), OUT / case["adapter"], is_trainable=True)
    initial = {n: p.detach().clone() for n, p in model.named_parameters() if ".default." in n}
    set_fields = {**BASE_CONFIG, **case["config"]}
    args = DPOConfig(output_dir=str(workdir / name), **set_fields)
    recorder = LogRecorder()
    trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[recorder])
    trainer.remove_callback(PrinterCallback)
    prepared = trainer.train_dataset
    if len(prepared) != len(ROWS):
        sys.exit(f"{name}: TRL kept {len(prepared)} of {len(ROWS)} rows")
    row_of = {preference_key(ex): i for i, ex in enumerate(prepared)}
    collator = RecordingCollator(trainer.data_collator, row_of)
    trainer.data_collator = collator

    peft_model = trainer.model
    params = dict(peft_model.named_parameters())
    ref_names = [n for n in params if ".ref." in n]
    ref_checks = {
        "ref_model_is_none": trainer.ref_model is None,
        "adapters": sorted(peft_model.peft_config),
        "ref_adapter_tensors": len(ref_names),
        "ref_adapter_requires_grad": any(params[n].requires_grad for n in ref_names),
        "ref_equals_starting_adapter_max_abs_diff": max(
            (params[n.replace(".default.", ".ref.")] - p).abs().max().item() for n, p in initial.items()),
        "trainable_parameters": sorted(n for n, p in params.items() if p.requires_grad),
    }
    if not ref_names or ref_checks["ref_equals_starting_adapter_max_abs_diff"] != 0.0:
        sys.exit(f"{name}: TRL made no copy of the starting adapter as the reference")
    if any(".default." not in n for n in ref_checks["trainable_parameters"]):
        sys.exit(f"{name}: something besides the default adapter trains")

    start = time.time()
    trainer.train()
    seconds = time.time() - start
    step_rows = [b for b in collator.batches][:MAX_STEPS]
    per = args.per_device_train_batch_size
    expected = ([list(range(i, i + per)) for i in range(0, len(ROWS), per)] * 2)[:MAX_STEPS]
    if step_rows != expected:
        sys.exit(f"{name}: batches are not in file order: {step_rows}")
    if [m["step"] for m in recorder.steps] != list(range(1, MAX_STEPS + 1)):
        sys.exit(f"{name}: expected one log per step")
    ref_checks["ref_unchanged_after_training_max_abs_diff"] = max(
        (params[n.replace(".default.", ".ref.")] - p).abs().max().item() for n, p in initial.items())
    final = final_adapter(peft_model)
    config = {
        **case_record(name, case, "../train.jsonl (file order, every row kept)"),
        "dpo_config_set": jsonable(set_fields),
        "reference": ref_checks,
        "step_rows": step_rows,
        "versions": {**base_fixtures.versions(), "peft": peft.__version__},
    }
    return recorder.steps, final, config, seconds


def final_adapter(peft_model) -> dict:
    """The trained "default" adapter with PEFT's saved names."""
    return {k: v.detach().clone().contiguous()
            for k, v in get_peft_model_state_dict(peft_model, adapter_name="default").items()}


def case_record(name: str, case: dict, dataset: str) -> dict:
    """What every case's config.json says first: the case, its base, the starting adapter, the data."""
    return {
        "case": name,
        "base_model": str(base_of(case["adapter"]).relative_to(REPO)),
        "starting_adapter": case["adapter"],
        "adapter_settings": ADAPTERS[case["adapter"]],
        "dataset": dataset,
    }


def run_sft_case(name: str, case: dict, workdir: Path):
    """TRL's SFTTrainer on a trainable PeftModel of the starting adapter: the adapter's steps and final weights."""
    tokenizer = AutoTokenizer.from_pretrained(base_of(case["adapter"]))
    model = PeftModel.from_pretrained(load_base(case["adapter"]), OUT / case["adapter"], is_trainable=True)
    trainer, args, set_fields, recorder, collator = base_fixtures.sft_trainer(name, model, tokenizer, case, workdir)
    peft_model = trainer.model
    trainable = sorted(n for n, p in peft_model.named_parameters() if p.requires_grad)
    if not trainable or any(".default." not in n for n in trainable):
        sys.exit(f"{name}: something besides the default adapter trains")
    start = time.time()
    trainer.train()
    seconds = time.time() - start
    micro = base_fixtures.sft_steps_in_file_order(name, args, recorder, collator)
    config = {
        **case_record(name, case, "../sft.train.jsonl (train.jsonl's prompt and chosen as {prompt, completion}), file order"),
        "sft_config_set": jsonable(set_fields),
        "trl_defaults_that_matter": {f: jsonable(getattr(args, f, "absent")) for f in [
            "completion_only_loss", "assistant_only_loss", "loss_type", "packing", "padding_free", "max_length",
            "truncation_mode", "eos_token", "average_tokens_across_devices"]},
        "trainable_parameters": trainable,
        "step_rows": micro,
        "versions": {**base_fixtures.versions(), "peft": peft.__version__},
    }
    return recorder.steps, final_adapter(peft_model), config, seconds


def main():
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    OUT.mkdir(parents=True, exist_ok=True)
    # --only CASE ...: remake those cases from the committed starting adapters, nothing else.
    only = set(sys.argv[sys.argv.index("--only") + 1:]) if "--only" in sys.argv else None
    if only is None:
        for name, spec in ADAPTERS.items():
            make_adapter(name, spec)
        for adapter in ("initial-all-linear", "initial-phi3-all-linear"):
            write_jsonl(OUT / f"{adapter}.logps.jsonl", peft_logps(adapter))
    dataset = Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in ROWS])
    runs = [(name, lambda n, c, tmp: run_case(n, c, dataset, tmp), case) for name, case in CASES.items()]
    runs += [(name, run_sft_case, case) for name, case in SFT_CASES.items()]
    with tempfile.TemporaryDirectory() as tmp:
        for name, run, case in runs:
            if only is not None and name not in only:
                continue
            steps, final, config, seconds = run(name, case, Path(tmp))
            write_jsonl(OUT / f"{name}.metrics.jsonl", steps)
            save_file(final, str(OUT / f"{name}.final.safetensors"), metadata={"format": "pt"})
            write_json(OUT / f"{name}.config.json", config)
            print(f"{name:8s} {seconds:4.1f}s  loss step1 {steps[0]['loss']:.6f} step10 {steps[-1]['loss']:.6f}  "
                  f"margins step1 {steps[0].get('rewards/margins', float('nan')):.6f}")


if __name__ == "__main__":
    main()
