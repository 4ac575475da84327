"""DiffDA denoiser: milliseconds per sample, one batch of a whole ensemble against chunks of it.

    python benchmarks/diffda_batch.py [--samples 1136] [--grid 32] [--levels 2] [--repeats 3]

The sampler evaluates the U-Net on every member of every case at once (qg-da small:
71 cases x 16 members = 1136 samples of a 2-level 32 x 32 grid). This times the DiffDA
default U-Net (random weights: the cost does not depend on them) through the sampler's
``Denoiser``, on that batch in one call (``chunk=None``) and in chunks, in the same process
on one thread, checks the outputs are equal, and prints each chunk size's speed-up over
the single batch.
"""
from __future__ import annotations

import argparse
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1136)
    ap.add_argument("--grid", type=int, default=32)
    ap.add_argument("--levels", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from baselines.diffda import DiffDAConfig
    from baselines.diffusion import Denoiser, DiffusionConfig
    from baselines.learned.nets import UNet

    c = DiffDAConfig()
    net = UNet(2 * args.levels, args.levels, dim=2, base_channels=c.base_channels,
               channel_mults=tuple(c.channel_mults), blocks_per_level=c.blocks_per_level,
               embedding_dim=c.embedding_dim).eval()
    gen = torch.Generator().manual_seed(0)
    x_t, cond = torch.randn(2, args.samples, args.levels, args.grid, args.grid, generator=gen)
    t = torch.rand(args.samples, generator=gen)
    parts = DiffusionConfig().build()

    def timed(chunk):
        den = Denoiser(net, parts.parameterization, parts.scheduler, cond, chunk=chunk)
        best, out = float("inf"), None
        with torch.no_grad():
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                out = den(x_t, t)[0]
                best = min(best, time.perf_counter() - t0)
        return best, out

    ref, ref_out = timed(None)
    print(f"{args.samples} samples, {args.levels} x {args.grid}^2, one thread; best of {args.repeats}")
    print(f"one batch: {1e3 * ref / args.samples:.2f} ms/sample")
    for chunk in (8, 16, 32, 64, 128):
        dt, out = timed(chunk)
        same = "equal" if torch.equal(out, ref_out) else f"max diff {float((out - ref_out).abs().max()):.1e}"
        print(f"chunks of {chunk:4d}: {1e3 * dt / args.samples:.2f} ms/sample, {ref / dt:.2f}x, output {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
