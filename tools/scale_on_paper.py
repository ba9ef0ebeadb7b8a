#!/usr/bin/env python3
"""Predicts dpo-dist's s/step and pairs/s on 1, 4, 16 and 64 nodes from one node's measured step (README, "Scale on paper").

Input: what `dpo-dist bench` printed on one node for the SmolLM2-135M shape: the median s/step and the
model FLOPs per step, with the node's ranks already reducing among themselves inside that step. Each node
trains the same number of pairs per step (weak scaling: the global batch grows with the nodes).

Model, per step, for a model of N parameters:
  compute  = node_seconds x (6 N T) / (6 N0 T)   the measured node rate R = FLOPs / s, used at every size
             (FLOPs ~ 6 x parameters x tokens: 1.22 TFLOP by that rule for the 135M step measured at
             1.18 TFLOP counted exactly), so compute scales with N;
  reduce   = 2 (p - 1) / p x N x bytes / bandwidth   a ring all-reduce between the p nodes, bytes = 8 (the
             default fp64 sum) or 4 (--reduce-dtype float32), latency ignored;
  step     = compute + reduce   (no overlap: an upper bound; non-blocking buckets across hosts hide part of it).
Memory is not modelled: the 1.7B and 3B rows need more than a 24 GB node holds in full fp32 training today.

Usage: python tools/scale_on_paper.py --node-seconds 5.7 --node-flops 1.183e12 --pairs-per-step 4
"""
import argparse

MODELS = [("SmolLM2-135M", 134.5e6), ("SmolLM2-1.7B", 1.711e9), ("SmolLM3-3B", 3.075e9)]
NETWORKS = [("10 GbE", 1.25e9), ("100 Gb/s InfiniBand", 12.5e9)]
NODES = [1, 4, 16, 64]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--node-seconds", type=float, required=True, help="one node's median s/step (135M shape)")
    p.add_argument("--node-flops", type=float, required=True, help="model FLOPs of that step")
    p.add_argument("--pairs-per-step", type=int, default=4, help="pairs per node per step")
    p.add_argument("--reduce-bytes", type=int, default=8, help="8: fp64 sum (default); 4: --reduce-dtype float32")
    opts = p.parse_args()
    base_params = MODELS[0][1]
    print(f"| model | network | " + " | ".join(f"{n} node{'s' if n > 1 else ''}: s/step, pairs/s" for n in NODES) + " |")
    print("|---|---|" + "---|" * len(NODES))
    for name, params in MODELS:
        compute = opts.node_seconds * params / base_params
        for net, bandwidth in NETWORKS:
            cells = []
            for n in NODES:
                reduce = 2 * (n - 1) / n * params * opts.reduce_bytes / bandwidth
                step = compute + reduce
                cells.append(f"{step:.1f}, {opts.pairs_per_step * n / step:.2f}")
            print(f"| {name} | {net} | " + " | ".join(cells) + " |")
    rate = opts.node_flops / opts.node_seconds
    print(f"\nnode rate {rate / 1e9:.0f} GFLOP/s; gradient bytes per step {opts.reduce_bytes} x parameters")


if __name__ == "__main__":
    main()
