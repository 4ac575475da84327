"""GNN layer types: seconds per training batch (forward + backward) on a challenge's training pairs.

    python benchmarks/gnn_speed.py [--challenge qg-da] [--size small] [--batch 16] [--repeats 3]

Builds one batch of the challenge's train pairs (the same graph for both), times
``layer="interaction"`` (edge states, MLP on every edge) and ``layer="factored"``
(elementwise per edge) in the same process, one thread, and prints the ratio.
"""
from __future__ import annotations

import argparse
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--challenge", default="qg-da")
    ap.add_argument("--size", default="small")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from baselines.learned.data import PairsDataModule
    from bench.registry import get_challenge, get_method

    ch = get_challenge(args.challenge)
    train, val = ch.split(args.size, "train"), ch.split(args.size, "val")
    dm = PairsDataModule(train, val, batch_size=args.batch, seed=0, max_samples=4 * args.batch)
    problem, target = dm.batch(torch.arange(args.batch), "cpu", train=True)
    times = {}
    for layer in ("interaction", "factored"):
        m = get_method("gnn", ch, {"layer": layer}, progress=False)
        learner = m._make(train.geometry, train.family == "mapping")(dm.normaliser)
        params = sum(p.numel() for p in learner.parameters())
        best = float("inf")
        for _ in range(args.repeats):
            learner.zero_grad()
            t0 = time.perf_counter()
            pred = learner.forward_problem(problem)
            loss = torch.mean((pred - learner.target(problem, target).to(pred.dtype)) ** 2)
            loss.backward()
            best = min(best, time.perf_counter() - t0)
        times[layer] = best
        print(f"{layer:12s} {params:8d} parameters  {best:7.2f} s per batch of {args.batch} (best of {args.repeats})")
    print(f"interaction / factored: {times['interaction'] / times['factored']:.1f}x  "
          f"({args.challenge} {args.size}, one thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
