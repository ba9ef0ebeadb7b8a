#!/usr/bin/env bash
# A model of each of the qwen3, olmo2, phi3, mistral-window and gemma3 fixtures saved by dpo-dist loads in transformers and computes
# what dpo-dist computes (tools/check_saved_model.py):
#   1. `train --learning-rate 0` (one step that leaves every weight as it is, then the final save): transformers'
#      logits on the fixture's sequences equal the fixture's reference logits (1e-4 abs);
#   2. 3 DPO steps at lr 1e-3 on Fixtures/trl/train.jsonl, then the save: transformers' summed completion log-probs
#      of the fixture's pairs (float64) equal `dpo-dist score`'s on the saved directory (1e-4 rel), token counts too.
# Usage: tools/check_saved_architectures.sh [WORK_DIR]   (from the repository root; DPO_DIST_BIN picks the binary,
# default .build/debug/dpo-dist; the venv's python from PYTHON, default ~/venvs/dpo-dist-tools/bin/python)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/dpo-dist-check-saved}
bin=${DPO_DIST_BIN:-$repo/.build/debug/dpo-dist}
python=${PYTHON:-$HOME/venvs/dpo-dist-tools/bin/python}
fixtures=$repo/Tests/DPOTestSupport/Fixtures
rm -rf "$work"
mkdir -p "$work"
for name in qwen3 olmo2 phi3 mistral-window gemma3; do
    echo "== $name: saved unchanged (lr 0)"
    "$bin" train --model "$fixtures/models/$name/model" --train-file "$fixtures/trl/train.jsonl" \
        --output-dir "$work/$name-lr0" --max-steps 1 --learning-rate 0 --per-device-train-batch-size 4 >"$work/$name-lr0.log" 2>&1
    "$python" "$repo/tools/check_saved_model.py" "$work/$name-lr0" "$fixtures/models/$name" | tail -3
    echo "== $name: saved after 3 steps at lr 1e-3"
    "$bin" train --model "$fixtures/models/$name/model" --train-file "$fixtures/trl/train.jsonl" \
        --output-dir "$work/$name-trained" --max-steps 3 --learning-rate 1e-3 --per-device-train-batch-size 4 \
        >"$work/$name-trained.log" 2>&1
    "$bin" score --model "$work/$name-trained" --data "$fixtures/models/$name/pairs.jsonl" --output "$work/$name-scores.jsonl" \
        >>"$work/$name-trained.log" 2>&1
    "$python" "$repo/tools/check_saved_model.py" "$work/$name-trained" "$fixtures/models/$name" \
        --scores "$work/$name-scores.jsonl" | tail -3
done
