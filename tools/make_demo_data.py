#!/usr/bin/env python3
"""Writes the bundled demo data in data/demo/: small tasks whose right answer a program can check,
so a 2-layer, 64-wide model (`dpo-dist init`) learns them in minutes on two cores and DPO's effect
is plain to see.

    python3 tools/make_demo_data.py               # (re)writes data/demo/
    python3 tools/make_demo_data.py --out DIR --seed 1

Pure Python, no libraries; the same seed gives the same bytes. Files:

  sft.jsonl     {"prompt", "completion"}: the SFT stage. About 65% of completions are right and
                35% make the task's habitual mistake, so the SFT model (the DPO reference) is unsure
                and DPO has room to improve it.
  train.jsonl   {"prompt", "chosen", "rejected"}: DPO training pairs. chosen is right; rejected is
                mostly the habitual mistake, sometimes another wrong answer.
  eval.jsonl    the same for evaluation. No eval prompt is a train prompt; the rev, up, num and
                word eval prompts are not in sft.jsonl either. The arithmetic facts (there are only 155) are
                all in sft.jsonl: the reference is meant to know arithmetic, as a pretrained model
                would, and DPO sees none of the eval facts.
  corpus.txt    the SFT texts, one per line: train the init tokenizer on it
                (`dpo-dist init --tokenizer-from data/demo/corpus.txt`) so its merges fit the data.
  README.md     what the files are.

Every prompt ends with " =" and every completion is a space and a word or number, so the GPT-2
pre-tokenizer always cuts between prompt and completion (tokenizing the prompt alone gives a prefix
of tokenizing prompt + completion; no BPE merge crosses the boundary), and a word in the answer is
the same token(s) as the same word in the prompt (" cat" both times, not " cat" and "cat").
"""

import argparse
import json
import os
import random

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Common three-letter English words, none a palindrome (so reversing always changes the word).
WORDS = sorted(set("""
act add age ago aid aim air all and ant any ape apt arc arm art ash ask axe bad bag ban bar bat bay bed
bee beg bet big bin bit box boy bud bug bun bus but buy cab can cap car cat cow cry cub cup cut day den
dew dig dim dog dot dry due dug ear eat egg elf elk elm end era fan far fat fax fed fee few fig fin fir
fit fix fly foe fog for fox fry fun fur gap gas gem get gin got gum gut guy gym ham hat hay hen her hid
him hip hit hog hot how hug hut ice icy ill imp ink inn ion ivy jam jar jaw jet job jog joy jug key kid
kin kit lab lad lap law lay leg let lid lie lip lit log lot low mad man map mat men mix mob mop mud mug
nap net new nod nor not now nut oak oar oat odd oil old one orb ore our out owl own pal pan paw pay pea
pen pet pie pig pin pit ply pod pot pry pub pun put rag ram ran rap rat raw ray red rib rid rim rip rob
rod rot row rub rug rum run rut rye sad sag sat saw say sea set shy sip sit six ski sky sly sob sod son
soy spa spy sty sum sun tab tag tan tap tar tax tea ten tie tin tip toe ton top toy try tub tug two urn
use van vat vet vow wag war wax way web wed wet who why wig win wit woe wok won yak yam yap yes yet zip
""".split()))
assert all(w != w[::-1] and len(w) == 3 for w in WORDS)

TASKS = ["add", "sub", "rev", "up", "num", "word"]
# Per task: DPO train pairs, eval pairs, SFT rows. The arithmetic tasks have few prompts (100 and
# 55 facts), so fewer pairs: no pair may repeat.
COUNTS = {
    "add": (100, 20, 400), "sub": (50, 10, 300), "rev": (340, 30, 425),
    "up": (340, 30, 425), "num": (335, 30, 425), "word": (335, 30, 425),
}
SFT_RIGHT = 0.65


def all_prompts(task):
    """Every prompt of a task as (prompt, right answer, the prompt's operands)."""
    if task == "add":
        return [(f"{a}+{b} =", f" {a + b}", (a, b)) for a in range(10) for b in range(10)]
    if task == "sub":
        return [(f"{a}-{b} =", f" {a - b}", (a, b)) for a in range(10) for b in range(a + 1)]
    if task == "rev":
        return [(f"rev {w} =", f" {w[::-1]}", (w,)) for w in WORDS]
    if task == "up":
        return [(f"up {w} =", f" {w.upper()}", (w,)) for w in WORDS]
    if task in ("num", "word"):
        # Pick the number or the word out of a word and a digit, in either order.
        items = [(w, str(d)) for w in WORDS for d in range(10)]
        prompts = []
        for w, d in items:
            for first, second in ((w, d), (d, w)):
                prompts.append((f"{task} {first} {second} =", f" {d if task == 'num' else w}", (first, second)))
        return prompts
    raise ValueError(task)


def mistake(task, right, operands, rng):
    """The wrong answer this task's model tends to give. Each task has one habit (rarely another
    slip), and SFT teaches it to the reference about a third of the time: DPO then has one lesson
    per task to learn, one it can carry to prompts it never saw. (A scatter of random wrong answers
    teaches less: the reference gives each of them almost no probability, so their rewards are noise.)"""
    if task in ("add", "sub"):
        a, b = operands
        n = int(right)
        if rng.random() < 0.85:              # writes the digits down instead of computing: 3+4 = 34
            return f" {a}{b}"
        return f" {rng.choice([m for m in (n - 1, n + 1) if m >= 0])}"   # off by one
    if task == "rev":                        # copies the word instead of reversing it
        word = operands[0]
        if rng.random() < 0.9:
            return f" {word}"
        a, b, c = word
        return " " + rng.choice(sorted({a + c + b, b + a + c, b + c + a, c + a + b} - {word[::-1], word}) or [word])
    if task == "up":                         # leaves the word lowercase, or only partly uppercased
        word = operands[0]
        return " " + rng.choices([word, word.capitalize(), word[:2].upper() + word[2], word[0] + word[1:].upper()],
                                 [6, 2, 1, 1])[0]
    if task in ("num", "word"):              # picks the other item
        first, second = operands
        return f" {second}" if right == f" {first}" else f" {first}"
    raise ValueError(task)


def make(seed):
    rng = random.Random(seed)
    sft, train, evaluation = [], [], []
    for task in TASKS:
        n_train, n_eval, n_sft = COUNTS[task]
        prompts = all_prompts(task)
        rng.shuffle(prompts)
        # Eval prompts first, then train prompts from the rest: the two never share a prompt.
        eval_prompts, rest = prompts[:n_eval], prompts[n_eval:]
        if task in ("num", "word"):
            rest = rest[:4 * n_train]        # 5,720 prompts each: a few hundred are plenty
        for prompt, right, operands in eval_prompts:
            evaluation.append({"prompt": prompt, "chosen": right, "rejected": mistake(task, right, operands, rng)})
        seen = set()
        while len(seen) < n_train:
            prompt, right, operands = rng.choice(rest)
            rejected = mistake(task, right, operands, rng)
            if rejected == right or (prompt, rejected) in seen:
                continue
            seen.add((prompt, rejected))
            train.append({"prompt": prompt, "chosen": right, "rejected": rejected})
        # SFT covers the train prompts and more, but for word tasks never an eval prompt; for
        # arithmetic it covers every fact (see the docstring).
        sft_pool = prompts if task in ("add", "sub") else rest
        for _ in range(n_sft):
            prompt, right, operands = rng.choice(sft_pool)
            completion = right if rng.random() < SFT_RIGHT else mistake(task, right, operands, rng)
            sft.append({"prompt": prompt, "completion": completion})
    for rows in (sft, train, evaluation):
        rng.shuffle(rows)
    return sft, train, evaluation


README = """# Demo data

Small tasks whose right answer a program can check, made by `tools/make_demo_data.py` (seed {seed};
rerun it to get the same bytes). A 2-layer, 64-wide Llama from `dpo-dist init` learns them in
seconds to minutes on two cores, so the whole pipeline (init → SFT → DPO → eval) runs on a laptop.

| task | prompt | right | the mistake (rejected) |
|---|---|---|---|
| add | `3+4 =` | ` 7` | writes the digits down instead of adding: ` 34` (85%); off by one |
| sub | `9-4 =` | ` 5` | writes the digits down: ` 94` (85%); off by one |
| rev | `rev cat =` | ` tac` | copies the word unreversed: ` cat` (90%); another order of its letters |
| up | `up cat =` | ` CAT` | leaves it lowercase: ` cat` (60%); ` Cat`, ` CAt`, ` cAT` |
| num | `num cat 7 =` | ` 7` | the word instead of the number: ` cat` |
| word | `word 7 cat =` | ` cat` | the number instead of the word: ` 7` |

Each task has one habitual mistake. SFT teaches it to the reference about a third of the time, and
DPO has one lesson per task to learn, one it can carry over to prompts it never trained on. Mistakes
a tiny model cannot recognise on a new prompt (an off-by-one sum of a fact DPO never saw, the second
word of `first cat dog =` instead of the first) or random wrong words that the reference gives almost
no probability (so their rewards are noise) kept held-out accuracy near 0.6 in trials; they are rare
here or left out.

Words are {n_words} common three-letter English words (no palindromes). Prompt + completion is at most
{longest} characters. Every prompt ends with ` =` and every completion is a space and a word or number, so
the tokenizer always cuts between the two (no BPE merge crosses the prompt/completion boundary), and a word
in the answer is the same token(s) as in the prompt (` cat` both times).
The EOS token is not in the files: TRL (and dpo-dist) append it to completions.

| file | rows | format | size |
|---|---|---|---|
| `sft.jsonl` | {n_sft} | `{{"prompt", "completion"}}` (TRL prompt-completion) | {size_sft} |
| `train.jsonl` | {n_train} | `{{"prompt", "chosen", "rejected"}}` (TRL preference) | {size_train} |
| `eval.jsonl` | {n_eval} | `{{"prompt", "chosen", "rejected"}}` | {size_eval} |
| `corpus.txt` | {n_corpus} lines | plain text: each SFT prompt + completion | {size_corpus} |

- **SFT** completions are right {sft_right:.0%} of the time ({sft_right_count} of {n_sft}) and make the
  task's mistake otherwise, so the SFT model (DPO's reference) is unsure, and DPO has room to
  improve on it.
- **DPO pairs**: `chosen` is always right, `rejected` always wrong; no pair repeats.
- **Held out**: no eval prompt is a train prompt. The rev, up, num and word eval prompts are not in
  `sft.jsonl` either; the arithmetic facts (only 155 exist) are all in `sft.jsonl`, as a pretrained model
  would know arithmetic, and none of the eval facts is in `train.jsonl`. So eval `rewards/accuracies`
  measures whether the preference DPO learned carries over to prompts it never trained on.
- **Tokenizer**: `dpo-dist init --tokenizer-from data/demo/corpus.txt` learns its merges from the same
  texts the model trains on.

## What to expect

Measured with dpo-dist on 2 cores, model from `dpo-dist init --tokenizer-from data/demo/corpus.txt`
(defaults otherwise): `dpo-dist sft` with learning rate 3e-3, 30 epochs, batch 16, cosine schedule, 20
warmup steps (about 9 s), then `dpo-dist train` with beta 0.1, learning rate 2e-4, 3 epochs, batch 8
(about 2 s). Held-out `rewards/accuracies` is 0.87 after 100 steps and 0.93 at the end (0.93-0.94 for
data seeds 0-3); the policy gives the rejected answer greedily on 2% of eval prompts, the reference on
27%. A higher learning rate (5e-4) reaches 0.99 but the greedy answers get worse (the policy drifts: KL
2.2); adding the SFT loss (`--loss-type sigmoid,sft`) at 5e-4 keeps them better than the reference's.
The model cannot reverse or uppercase words it never saw, so greedy answers to those stay mostly wrong:
DPO removes the habit; it does not teach spelling.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "data", "demo"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sft, train, evaluation = make(args.seed)
    train_prompts = {r["prompt"] for r in train}
    sft_prompts = {r["prompt"] for r in sft}
    assert not train_prompts & {r["prompt"] for r in evaluation}, "an eval prompt is a train prompt"
    assert all(r["prompt"] not in sft_prompts for r in evaluation if r["prompt"][0].isalpha())
    assert all(r["chosen"] != r["rejected"] for r in train + evaluation)
    corpus = [r["prompt"] + r["completion"] for r in sft]

    os.makedirs(args.out, exist_ok=True)

    def write(name, text):
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        return os.path.getsize(os.path.join(args.out, name))

    def jsonl(rows):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def kb(n):
        return f"{n / 1024:.1f} KB"

    sizes = {name: write(name, text) for name, text in [
        ("sft.jsonl", jsonl(sft)), ("train.jsonl", jsonl(train)), ("eval.jsonl", jsonl(evaluation)),
        ("corpus.txt", "\n".join(corpus) + "\n")]}
    longest = max(len(r["prompt"]) + max(len(r.get("completion", "")), len(r.get("chosen", "")),
                                         len(r.get("rejected", ""))) for r in sft + train + evaluation)
    answers = {prompt: right for task in TASKS for prompt, right, _ in all_prompts(task)}
    right = sum(1 for r in sft if r["completion"] == answers[r["prompt"]])
    write("README.md", README.format(
        seed=args.seed, n_words=len(WORDS), longest=longest, n_sft=len(sft), n_train=len(train),
        n_eval=len(evaluation), n_corpus=len(corpus), sft_right=right / len(sft), sft_right_count=right,
        size_sft=kb(sizes["sft.jsonl"]), size_train=kb(sizes["train.jsonl"]), size_eval=kb(sizes["eval.jsonl"]),
        size_corpus=kb(sizes["corpus.txt"])))
    print(f"wrote {args.out}: sft {len(sft)} rows ({kb(sizes['sft.jsonl'])}), train {len(train)} pairs "
          f"({kb(sizes['train.jsonl'])}), eval {len(evaluation)} pairs ({kb(sizes['eval.jsonl'])}), corpus "
          f"{kb(sizes['corpus.txt'])}; SFT right {right / len(sft):.1%}; longest prompt + answer {longest} chars")


if __name__ == "__main__":
    main()
