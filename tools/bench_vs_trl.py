#!/usr/bin/env python3
"""dpo-dist against TRL's DPOTrainer, side by side in one run on the same weights and data (launch/bench-vs-trl).

The workload: a SmolLM2-135M-shaped Llama (hidden 576, 30 layers, 9 heads, 3 KV heads, intermediate 1536,
vocab 49152, tied, rope_theta 100000) with random weights saved by transformers, the SmolLM2 tokenizer,
--pairs preference pairs (default 256) of about 128-token prompts and about 125-token chosen and rejected
completions, max_length 512, 4 pairs per optimizer step, learning rate 1e-6, reference log-probs
precomputed, --steps optimizer steps (default 6).

Configurations:
  TRL fp32 and TRL bf16 (autocast, TRL's default precision): torchrun 2 processes x 1 thread,
    per_device_train_batch_size 2, precompute_ref_log_probs, no gradient checkpointing (TRL's default turns it
    on, which only costs time here), sequential sampling so the batches are dpo-dist's.
  dpo-dist fp32 and bf16: 1 process x 2 threads (4 pairs per micro-batch) and mpirun -np 2 x 1 thread (2 per rank),
    the latter with the default fp64 gradient reduction and with --reduce-dtype float32. On a CPU without BF16
    instructions (no avx512_bf16 or amx_bf16), where dpo-dist refuses --bf16, its bf16 rows are left out and the
    table says so, with dpo-dist's fastest row against TRL's fastest of either precision.
A configuration whose process fails is reported under the table (with its log) and the others still run;
the bench then exits 1.

For each: median s/step over steps 3..N, the whole run (process start to exit: load, tokenization, precompute,
the steps; dpo-dist also writes its final model), pairs/s over a whole epoch including the precompute
(pairs / (whole run - steps + steps per epoch x median s/step)), the speed-up over TRL's fastest of the same
precision, and the peak RSS of the largest process. The step-1 losses must agree (1e-4 relative in fp32,
2e-2 in bf16).

Usage (launch/bench-vs-trl does this): python tools/bench_vs_trl.py --bin .build/release/dpo-dist --work DIR
"""
import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The rows of the table, in the order they run (--only picks some).
CONFIGURATIONS = ["trl-fp32", "trl-bf16", "fp32-1", "fp32-2", "fp32-2-f32", "bf16-1", "bf16-2", "bf16-2-f32"]
DEFAULT_TOKENIZER = REPO.parent / "shared" / "tokenizers" / "smollm2-135m"


# ----------------------------------------------------------------------------------------------- workload

def made_up_text(tok, rng: random.Random, chunk: int = 8):
    """A function of a token count: made-up words until the tokenizer counts that many tokens (within a word)."""
    syllables = ["ka", "lo", "mi", "ten", "ra", "su", "vel", "dor", "an", "ish", "po", "te", "gra", "un", "es", "ti"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(3000)]

    def text(tokens: int) -> str:
        out = []
        while len(tok(" ".join(out), add_special_tokens=False)["input_ids"]) < tokens:
            out.extend(rng.choice(words) for _ in range(chunk))
        while len(out) > 1 and len(tok(" ".join(out), add_special_tokens=False)["input_ids"]) > tokens:
            out.pop()
        return " ".join(out)

    return text


def make_workload(work: Path, tokenizer_dir: Path, pairs: int, seed: int) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    model_dir = work / "model"
    if (model_dir / "model.safetensors").exists() and (work / f"pairs-{pairs}.jsonl").exists():
        return
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, model_dir / name)
    tok = AutoTokenizer.from_pretrained(model_dir)
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True, rope_theta=100000.0,
                         max_position_embeddings=8192, rms_norm_eps=1e-5, hidden_act="silu",
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=None)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(model_dir, safe_serialization=True)
    tok.save_pretrained(model_dir)

    rng = random.Random(seed)
    text = made_up_text(tok, rng)

    with open(work / f"pairs-{pairs}.jsonl", "w") as f:
        for _ in range(pairs):
            p = text(rng.randint(112, 144))
            c = text(rng.randint(109, 141))
            r = text(rng.randint(109, 141))
            f.write(json.dumps({"prompt": "Question: " + p + "\nAnswer:", "chosen": " " + c, "rejected": " " + r}) + "\n")


# ----------------------------------------------------------------------------------------------- TRL worker

def trl_worker(opts) -> None:
    """One torchrun process of TRL's DPOTrainer; rank 0 writes the step times and losses."""
    started = time.time()
    import torch
    torch.set_num_threads(1)
    import datasets
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    rank = int(os.environ.get("RANK", "0"))
    model = AutoModelForCausalLM.from_pretrained(opts.model, dtype=torch.float32, attn_implementation="sdpa")
    tok = AutoTokenizer.from_pretrained(opts.model)
    data = datasets.load_dataset("json", data_files=opts.data, split="train")

    class Times(TrainerCallback):
        def __init__(self):
            self.begin = None
            self.steps = []
            self.losses = []

        def on_step_begin(self, args, state, control, **kw):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.steps.append(time.perf_counter() - self.begin)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append({k: logs[k] for k in ("loss", "logps/chosen", "logps/rejected") if k in logs})

    times = Times()
    args = DPOConfig(
        output_dir=opts.out, max_steps=opts.steps, learning_rate=1e-6, lr_scheduler_type="constant",
        per_device_train_batch_size=opts.per_device, gradient_accumulation_steps=1, max_length=512,
        precompute_ref_log_probs=True, bf16=opts.precision == "bf16", fp16=False, use_cpu=True,
        activation_checkpointing=False, logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True,
        train_sampling_strategy="sequential", dataloader_num_workers=0, seed=42, beta=0.1,
    )
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[times])
    trainer.train()
    whole = time.time() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    with open(Path(opts.out) / f"rank{rank}.json", "w") as f:
        json.dump({"steps": times.steps, "losses": times.losses, "whole": whole, "rss": rss}, f)


# ----------------------------------------------------------------------------------------------- runs

def peak_rss_of(cmd, env, log: Path) -> (float, float):
    """Runs cmd, returns (seconds, peak RSS in bytes of its largest process, from wait4)."""
    start = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.time() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RunFailed(f"exit {code}; see {log}")
    return seconds, usage.ru_maxrss * 1024


class RunFailed(Exception):
    """One configuration's process failed: the table goes on without it and the bench exits 1."""


def cpu_has_bf16() -> bool:
    """dpo-dist's rule for --bf16: avx512_bf16 or amx_bf16 among /proc/cpuinfo's flags."""
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run_trl(opts, work: Path, precision: str) -> dict:
    out = work / f"trl-{precision}"
    shutil.rmtree(out, ignore_errors=True)
    # TRL 1.16 keeps its precomputed reference log-probs (and its tokenized dataset) in the datasets
    # cache, keyed by the data and a hash of the model: a second run on the same workload would read
    # them instead of computing them. Each run gets an empty cache, so TRL's whole run includes its
    # precompute as dpo-dist's does (dpo-dist's cache is in its output folder, emptied above too).
    datasets_cache = work / f"trl-{precision}-datasets-cache"
    shutil.rmtree(datasets_cache, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               HF_DATASETS_CACHE=str(datasets_cache))
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", str(Path(__file__).resolve()), "trl-worker",
           "--model", str(work / "model"), "--data", str(work / f"pairs-{opts.pairs}.jsonl"), "--out", str(out),
           "--steps", str(opts.steps), "--per-device", "2", "--precision", precision]
    seconds, _ = peak_rss_of(cmd, env, work / f"trl-{precision}.log")
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    r0 = ranks[0]
    return {"name": f"TRL {precision}, torchrun 2 x 1 thread", "precision": precision, "steps": r0["steps"],
            "logged": r0["losses"], "whole": seconds, "rss": max(r["rss"] for r in ranks)}


def run_dpo_dist(opts, work: Path, precision: str, ranks: int, reduce: str = "float64") -> dict:
    out = work / f"dpo-dist-{precision}-np{ranks}-{reduce}"
    shutil.rmtree(out, ignore_errors=True)
    per_device = 4 // ranks
    train = ["train", "--model", str(work / "model"), "--train-file", str(work / f"pairs-{opts.pairs}.jsonl"),
             "--output-dir", str(out), "--max-steps", str(opts.steps), "--learning-rate", "1e-6",
             "--lr-scheduler-type", "constant", "--per-device-train-batch-size", str(per_device), "--max-length", "512",
             "--precompute-ref-log-probs", "--logging-steps", "1", "--no-shuffle", "--beta", "0.1", "--seed", "42"]
    if precision == "bf16":
        train.append("--bf16")
    if reduce != "float64":
        train += ["--reduce-dtype", reduce]
    env = dict(os.environ)
    if ranks == 1:
        cmd = [opts.bin] + train + ["--threads", "2"]
    else:
        env["DPO_DIST_BIN"] = str(Path(opts.bin).resolve())
        env["OPENBLAS_NUM_THREADS"] = "1"
        cmd = [str(REPO / "launch" / "mpi"), str(ranks)] + train
    seconds, rss = peak_rss_of(cmd, env, work / f"dpo-dist-{precision}-np{ranks}-{reduce}.log")
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
    steps = [l for l in lines if "loss" in l and "step_seconds" in l]
    layout = "1 process x 2 threads" if ranks == 1 else f"mpirun -np {ranks} x 1 thread"
    if reduce != "float64":
        layout += f", {reduce} reduce"
    return {"name": f"dpo-dist {precision}, {layout}", "precision": precision,
            "steps": [l["step_seconds"] for l in steps],
            "logged": [{k: l[k] for k in ("loss", "logps/chosen", "logps/rejected")} for l in steps], "whole": seconds, "rss": rss}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "trl-worker":
        p = argparse.ArgumentParser()
        for k in ("--model", "--data", "--out", "--precision"):
            p.add_argument(k, required=True)
        p.add_argument("--steps", type=int, required=True)
        p.add_argument("--per-device", type=int, required=True)
        trl_worker(p.parse_args(sys.argv[2:]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True, help="dpo-dist release binary")
    p.add_argument("--work", type=Path, required=True, help="folder for the workload and the runs")
    p.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="folder with SmolLM2's tokenizer.json")
    p.add_argument("--pairs", type=int, default=256)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--only", nargs="*", default=None, choices=CONFIGURATIONS, help="configurations: %(choices)s")
    opts = p.parse_args()
    if not (opts.tokenizer / "tokenizer.json").exists():
        sys.exit(f"error: {opts.tokenizer}: no tokenizer.json (SmolLM2-135M's tokenizer; pass --tokenizer DIR)")
    plan = [("trl-fp32", lambda: run_trl(opts, opts.work, "fp32")), ("trl-bf16", lambda: run_trl(opts, opts.work, "bf16")),
            ("fp32-1", lambda: run_dpo_dist(opts, opts.work, "fp32", 1)), ("fp32-2", lambda: run_dpo_dist(opts, opts.work, "fp32", 2)),
            ("fp32-2-f32", lambda: run_dpo_dist(opts, opts.work, "fp32", 2, "float32")),
            ("bf16-1", lambda: run_dpo_dist(opts, opts.work, "bf16", 1)), ("bf16-2", lambda: run_dpo_dist(opts, opts.work, "bf16", 2)),
            ("bf16-2-f32", lambda: run_dpo_dist(opts, opts.work, "bf16", 2, "float32"))]
    assert [key for key, _ in plan] == CONFIGURATIONS
    chosen = [(key, run) for key, run in plan if not opts.only or key in opts.only]
    # dpo-dist refuses --bf16 on a CPU without BF16 instructions (its products would be emulated). Asked for by
    # name, that is an error now rather than after the rows before it; by default those rows are left out and
    # the table says so. TRL's bf16 still runs: it is TRL's default precision, emulated or not.
    skipped = []
    if not cpu_has_bf16():
        ours_bf16 = [key for key, _ in chosen if key.startswith("bf16")]
        if opts.only and ours_bf16:
            sys.exit(f"error: --only {' '.join(ours_bf16)}: this CPU has no BF16 instructions (neither avx512_bf16 "
                     f"nor amx_bf16 in /proc/cpuinfo), and dpo-dist trains in bf16 only where it has them")
        skipped = ours_bf16
        chosen = [(key, run) for key, run in chosen if key not in skipped]
        if skipped:
            print(f"this CPU has no BF16 instructions: leaving out {' '.join(skipped)} (dpo-dist refuses --bf16 here)",
                  flush=True)
    opts.work.mkdir(parents=True, exist_ok=True)
    print(f"workload in {opts.work} ({opts.pairs} pairs)…", flush=True)
    make_workload(opts.work, opts.tokenizer, opts.pairs, seed=0)
    results, failed = [], []
    for key, run in chosen:
        print(f"running {key}…", flush=True)
        try:
            r = run()
        except RunFailed as e:
            print(f"  {key} failed: {e}", flush=True)
            failed.append(f"{key} ({e})")
            continue
        timed = r["steps"][2:] or r["steps"]
        r["step"] = statistics.median(timed)
        r["overhead"] = r["whole"] - sum(r["steps"])  # load + precompute (+ save)
        r["epoch_pairs_per_s"] = opts.pairs / (r["overhead"] + opts.pairs / 4 * r["step"])
        results.append(r)
        print(f"  {r['name']}: {r['step']:.2f} s/step, whole run {r['whole']:.0f} s, step 1 logps/chosen "
              f"{r['logged'][0]['logps/chosen']:.4f}, step {len(r['logged'])} loss {r['logged'][-1]['loss']:.6f}", flush=True)
        (opts.work / "results.json").write_text(json.dumps(results, indent=1))

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    print(f"\nmachine: {cpu}, {os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB;"
          f" {opts.pairs} pairs, {opts.steps} steps of 4 pairs, median of steps 3-{opts.steps}")
    print(f"{'configuration':54s} {'s/step':>7s} {'whole run':>10s} {'pairs/s (epoch)':>16s} {'speed-up':>9s} {'peak RSS':>9s}")
    ok = True
    trl_rows = [r for r in results if r["name"].startswith("TRL")]
    for r in results:
        trl = [t for t in trl_rows if t["precision"] == r["precision"]]
        fastest = min(trl, key=lambda t: t["step"]) if trl else None
        speedup = f"{fastest['step'] / r['step']:.2f}x" if fastest else "-"
        print(f"{r['name']:54s} {r['step']:7.2f} {r['whole']:9.0f}s {r['epoch_pairs_per_s']:16.3f} {speedup:>9s} {r['rss'] / 1e9:8.2f}G")
        if fastest and r is not fastest:
            # At step 1 the policy is the reference, so the loss is log 2 whatever the model computes:
            # the summed log-probs of step 1 are what must agree, and then the losses of every step.
            tol = 1e-4 if r["precision"] == "fp32" else 2e-2
            for step, (ours, theirs) in enumerate(zip(r["logged"], fastest["logged"]), start=1):
                for key in ("logps/chosen", "logps/rejected", "loss"):
                    if key not in ours or key not in theirs:
                        continue
                    rel = abs(ours[key] - theirs[key]) / max(abs(theirs[key]), 1e-6)
                    if rel > (tol if step == 1 else 10 * tol):
                        ok = False
                        print(f"  step {step} {key}: {ours[key]:.6f}, TRL {theirs[key]:.6f}: {rel:.1e} apart")
    print(f"agreement with TRL of the same precision (step 1 within 1e-4 fp32 / 2e-2 bf16, later steps 10x): "
          f"{'yes' if ok else 'NO'}")
    if skipped:
        ours = [r for r in results if r not in trl_rows]
        line = f"left out (no BF16 instructions on this CPU): {' '.join(skipped)}"
        if ours and trl_rows:
            best, theirs = min(ours, key=lambda r: r["step"]), min(trl_rows, key=lambda r: r["step"])
            line += (f"; dpo-dist's fastest ({best['name']}) against TRL's fastest of any precision ({theirs['name']}): "
                     f"{theirs['step'] / best['step']:.2f}x")
        print(line)
    for f in failed:
        print(f"FAILED: {f}")
    sys.exit(0 if ok and not failed else 1)


if __name__ == "__main__":
    main()
