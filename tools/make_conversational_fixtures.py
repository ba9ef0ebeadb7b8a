"""Token ids for conversational DPO and SFT rows, as TRL 1.16 prepares them.

Uses TRL's own `_tokenize` (which calls transformers' `apply_chat_template(tokenize=True)`) and
`common_prefix_length` on the llama-tied fixture model's tokenizer (its tokenizer_config.json carries
a ChatML template), and writes Tests/DPOTestSupport/Fixtures/conversational/:
  preference.jsonl        conversational preference rows (explicit and implicit prompt)
  preference.tokens.json  per row: prompt_len, chosen ids, rejected ids (TRL's DPOTrainer tokenize_fn)
  sft.jsonl               SFT rows: prompt/completion, text, messages, conversational prompt/completion
  sft.tokens.json         per row: input ids and the first trained position (TRL's SFTTrainer tokenize_fn)

Run: /path/to/venv/bin/python tools/make_conversational_fixtures.py
"""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import AutoTokenizer
from trl.data_utils import _tokenize, common_prefix_length, is_conversational, maybe_extract_prompt

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "DPOTestSupport", "Fixtures")
OUT = os.path.join(ROOT, "conversational")
tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "models", "llama-tied", "model"))

U = lambda s: {"role": "user", "content": s}
A = lambda s: {"role": "assistant", "content": s}
S = lambda s: {"role": "system", "content": s}

preference = [
    {"prompt": [U("What is 2+2?")], "chosen": [A("4")], "rejected": [A("5")]},
    {"prompt": [S("Be brief."), U("Capital of France?")], "chosen": [A("Paris.")], "rejected": [A("London, of course.")]},
    {"prompt": [U("hi"), A("hello!"), U("how are you?")], "chosen": [A("Fine, thanks.")], "rejected": [A("Go away.")]},
    # implicit prompt: the shared first turns
    {"chosen": [U("Say something nice."), A("You did well today.")],
     "rejected": [U("Say something nice."), A("No.")]},
    {"prompt": [U("Ünïcödé  and\nnewlines ")], "chosen": [A(" spaced out ")], "rejected": [A("plain")]},
]

rows = []
for example in preference:
    e = maybe_extract_prompt(dict(example))
    assert is_conversational(e)
    prompt_ids = _tokenize(tok, e["prompt"], add_generation_prompt=True)["input_ids"]
    chosen_ids = _tokenize(tok, e["prompt"] + e["chosen"])["input_ids"]
    rejected_ids = _tokenize(tok, e["prompt"] + e["rejected"])["input_ids"]
    prompt_len = min(common_prefix_length(prompt_ids, chosen_ids), common_prefix_length(prompt_ids, rejected_ids))
    rows.append({"prompt_len": prompt_len, "chosen": chosen_ids, "rejected": rejected_ids})

sft = [
    {"prompt": "Q: 3+4=", "completion": " 7"},
    {"text": "The quick brown fox."},
    {"messages": [S("You add numbers."), U("1+1"), A("2")]},
    {"prompt": [U("Name a colour.")], "completion": [A("Blue.")]},
]
sft_rows = []
for example in sft:
    e = dict(example)
    eos = tok.eos_token
    if not is_conversational(e):  # TRL's add_eos for plain text
        if "text" in e and not e["text"].endswith(eos):
            e["text"] += eos
        elif "completion" in e and not e["completion"].endswith(eos):
            e["completion"] += eos
    if "prompt" in e:
        if is_conversational(e):
            prompt_ids = _tokenize(tok, e["prompt"], add_generation_prompt=True)["input_ids"]
            ids = _tokenize(tok, e["prompt"] + e["completion"])["input_ids"]
        else:
            prompt_ids = _tokenize(tok, e["prompt"])["input_ids"]
            ids = _tokenize(tok, e["prompt"] + e["completion"])["input_ids"]
        start = common_prefix_length(prompt_ids, ids)
    elif "messages" in e:
        ids, start = _tokenize(tok, e["messages"])["input_ids"], 0
    else:
        ids, start = _tokenize(tok, e["text"])["input_ids"], 0
    sft_rows.append({"ids": ids, "completion_start": start})

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "preference.jsonl"), "w") as f:
    for e in preference:
        f.write(json.dumps(e, ensure_ascii=False) + "\n")
with open(os.path.join(OUT, "preference.tokens.json"), "w") as f:
    json.dump(rows, f)
with open(os.path.join(OUT, "sft.jsonl"), "w") as f:
    for e in sft:
        f.write(json.dumps(e, ensure_ascii=False) + "\n")
with open(os.path.join(OUT, "sft.tokens.json"), "w") as f:
    json.dump(sft_rows, f)
print("wrote", OUT)
