#!/usr/bin/env python3
"""Makes the safetensors fixtures that Tests/SafetensorsTests/SafetensorsTests.swift reads.

The files are written by the Hugging Face `safetensors` library (with torch, for BF16), and the
expected fp32 values are computed by torch/numpy, so the Swift reader is checked against the
reference implementation rather than against itself.

    python tools/make_safetensors_fixtures.py            # (re)writes Tests/DPOTestSupport/Fixtures/safetensors/
    python tools/make_safetensors_fixtures.py --check F  # loads F (e.g. written by our Swift writer) and prints it

Needs: torch, numpy, safetensors (pip install torch numpy safetensors).

expected.json holds every value as a bit pattern (fp32 bits, or the integer itself), so
infinities and -0 compare exactly and no decimal rounding sits between Python and Swift. NaN
payloads are not meaningful (torch canonicalizes NaN differently in different code paths, e.g.
half NaN -> 0x7FFFFFFF), so the tests compare a NaN only as being NaN.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "DPOTestSupport", "Fixtures", "safetensors")
METADATA = {"format": "pt", "source": "tools/make_safetensors_fixtures.py"}


def f32_from_bits(bits):
    return torch.from_numpy(np.array(bits, dtype=np.uint32).view(np.float32).copy())


def bf16_from_bits(bits):
    return torch.from_numpy(np.array(bits, dtype=np.uint16).view(np.int16).copy()).view(torch.bfloat16)


def fp32_bits(tensor):
    """The fp32 bit patterns that torch's own conversion gives, flattened row-major."""
    return [int(b) for b in tensor.to(torch.float32).numpy().reshape(-1).view(np.uint32)]


def describe(tensors):
    expected = {}
    for name, t in tensors.items():
        entry = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
        if t.dtype in (torch.int64, torch.int32):
            entry["ints"] = [int(v) for v in t.reshape(-1).tolist()]
        else:
            entry["float_bits"] = fp32_bits(t)
        expected[name] = entry
    return expected


def mixed_tensors():
    f16_values = [
        0.0, -0.0, 1.0, -2.0, 1.0 / 3.0, 65504.0,   # 65504: largest half
        2.0 ** -14,                                   # smallest normal half
        2.0 ** -24,                                   # smallest subnormal half
        2.0 ** -14 - 2.0 ** -24,                      # largest subnormal half
        -3 * 2.0 ** -24,                              # a negative subnormal
        math.inf, -math.inf, math.nan,
    ]
    bf16_bits = [
        0x3F80,  # 1.0
        0xC020,  # -2.5
        0x0001,  # smallest subnormal bf16
        0x7F7F,  # largest finite bf16
        0x7F80,  # inf
        0x8000,  # -0
        0x7FC0,  # NaN
        0x3EAA,  # 1/3 truncated
    ]
    f64_values = [
        0.1,               # rounds to nearest fp32
        1e300,             # overflows to inf in fp32
        -1e-50,            # underflows to -0 in fp32
        1 + 2.0 ** -24,    # exactly halfway between 1 and the next fp32: rounds to even (1.0)
        1 + 3 * 2.0 ** -24,  # halfway again: rounds to even (up)
    ]
    return {
        "f32": torch.tensor([[0.5, -1.25, 3.0], [1e-3, -0.0, 7.0e30]], dtype=torch.float32),
        "f32_scalar": torch.tensor(2.75, dtype=torch.float32),      # shape []
        "f32_empty": torch.zeros((0, 4), dtype=torch.float32),      # no bytes at all
        "f16": torch.from_numpy(np.array(f16_values, dtype=np.float16)),
        "bf16": bf16_from_bits(bf16_bits).reshape(2, 4),
        "f64": torch.tensor(f64_values, dtype=torch.float64),
        "ids": torch.tensor([[1, 2, 3], [-1, 2 ** 40, 0]], dtype=torch.int64),
        "ids32": torch.tensor([7, -8, 2 ** 31 - 1], dtype=torch.int32),
    }


def sharded_checkpoint(directory):
    shards = {
        "model-00001-of-00002.safetensors": {
            "model.embed_tokens.weight": torch.arange(8, dtype=torch.float32).reshape(4, 2) / 4,
            "model.layers.0.input_layernorm.weight": bf16_from_bits([0x3F80, 0x3FC0]),
        },
        "model-00002-of-00002.safetensors": {
            "model.norm.weight": torch.tensor([1.5, -0.25], dtype=torch.float16),
            "lm_head.weight": torch.arange(8, dtype=torch.float32).reshape(4, 2) * -0.5,
        },
    }
    os.makedirs(directory, exist_ok=True)
    weight_map, total_size, expected = {}, 0, {}
    for file_name, tensors in shards.items():
        save_file(tensors, os.path.join(directory, file_name), metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name] = file_name
            total_size += t.numel() * t.element_size()
        expected.update(describe(tensors))
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    return expected


def writer_inputs():
    """fp32 inputs that the Swift writer test writes; the Python-written files must match byte for byte."""
    bits = [
        0x3F800000,  # 1.0
        0x3F808000,  # 1.00390625: halfway between bf16 1.0 and 1.0078125, rounds to even (down)
        0x3F818000,  # 1.01171875: halfway, rounds to even (up)
        0x3F808001,  # just above halfway: rounds up
        0xBF807FFF,  # just below halfway, negative: rounds down in magnitude
        0x7F7FFFFF,  # largest fp32: rounds to inf in bf16
        0x00000001,  # smallest fp32 subnormal: rounds to +0
        0x80000000,  # -0
        0x7F800000,  # inf
        0xFF800000,  # -inf
        0x3EAAAAAB,  # 1/3
        0x4B800000,  # 2^24
    ]
    # No NaN here: torch's vectorized fp32 -> bf16 path turns every NaN into 0xFFFF, so the bytes
    # would differ from ours for no meaningful reason. The Swift tests check NaN by hand.
    return {
        "a.weight": {"shape": [3, 4], "bits": bits},
        "b": {"shape": [2], "bits": [0x40490FDB, 0xC2F6E979]},  # pi, -123.456
    }


def write_python_written(inputs):
    tensors = {name: f32_from_bits(v["bits"]).reshape(v["shape"]) for name, v in sorted(inputs.items())}
    metadata = {"format": "pt"}
    save_file(tensors, os.path.join(OUT, "python_written_f32.safetensors"), metadata=metadata)
    save_file({n: t.to(torch.bfloat16) for n, t in tensors.items()},
              os.path.join(OUT, "python_written_bf16.safetensors"), metadata=metadata)
    # torch's own fp32 -> bf16 rounding, for the Swift bf16 conversion to match.
    return {name: [int(b) for b in t.to(torch.bfloat16).view(torch.int16).numpy().reshape(-1).view(np.uint16)]
            for name, t in tensors.items()}


def make():
    os.makedirs(OUT, exist_ok=True)
    mixed = mixed_tensors()
    save_file(mixed, os.path.join(OUT, "mixed.safetensors"), metadata=METADATA)
    inputs = writer_inputs()
    expected = {
        "mixed": {"metadata": METADATA, "tensors": describe(mixed)},
        "sharded": sharded_checkpoint(os.path.join(OUT, "sharded")),
        "writer_inputs": inputs,
        "writer_bf16_bits": write_python_written(inputs),
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT} ({total} bytes)")


def check(path):
    """Loads a file with the reference library and prints it; fails loudly if the library refuses it."""
    with safe_open(path, framework="pt") as f:
        print(f"{path}: metadata {f.metadata()}")
        for name in f.keys():
            t = f.get_tensor(name)
            print(f"  {name}: {str(t.dtype).replace('torch.', '')} {list(t.shape)} {t.reshape(-1).tolist()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="FILE", nargs="+", help="load FILE(s) with the safetensors library and print the tensors")
    args = parser.parse_args()
    if args.check:
        for path in args.check:
            check(path)
    else:
        make()
