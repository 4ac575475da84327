"""Is the coarse QG model too energetic or energy-deficient? The regime a subgrid closure has to correct.

One HR eddy trajectory of a size's configuration (spun up as the dataset is), coarse-grained daily
with the datasets' operator, against the LR model run from its first coarse state without a closure
and with Smagorinsky and backscatter (both constants as given): the mean kinetic energy per layer
over the second half of a run of twice ``--days`` days, as a ratio to the filtered truth's over
``--days`` days. A ratio above 1 without closure means dissipative closures help; below 1, closures
that return energy do (Ross et al. 2023's setting). Prints one line per run; README_learned.md
quotes the figures.

    python benchmarks/closure_energy.py --size small            # HR 128^2 -> LR 32^2
    python benchmarks/closure_energy.py --size full             # HR 256^2 -> LR 64^2 (Ross et al.'s grids)
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from baselines.backscatter import backscatter_forcing
from baselines.smagorinsky import smagorinsky_forcing
from data_scripts.coarsen import coarsen
from data_scripts.config import get_config
from data_scripts.make_qg import models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=424242)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = get_config("qg", args.size)
    hr, lr = models(cfg)
    spin = int(cfg["spinup_days"])
    t0 = time.perf_counter()
    q = hr.initial_condition(1, seed=args.seed)
    for d in range(0, spin, 30):
        q = hr.step(q, 24 * min(30, spin - d))
    truth = [coarsen(q, cfg["nx_lr"])]
    for _, qs in hr.run(q, 24 * args.days, 24):
        truth.append(coarsen(qs, cfg["nx_lr"]))
    truth = torch.cat(truth)
    ke_truth = lr.energy(truth)["ke"].mean(0).numpy()
    print(f"{args.size}: HR {hr.nx}^2 -> LR {lr.nx}^2, filtered truth KE (upper, lower) {ke_truth} m^2/s^2 "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    runs = [("none", None), ("smagorinsky Cs=0.15", lambda x: smagorinsky_forcing(lr, x, 0.15)),
            ("smagorinsky Cs=0.05", lambda x: smagorinsky_forcing(lr, x, 0.05)),
            ("backscatter Cs=0.08 Cb=0.99", lambda x: backscatter_forcing(lr, x, 0.08, 0.99)),
            ("backscatter Cs=0.08 Cb=0.5", lambda x: backscatter_forcing(lr, x, 0.08, 0.5))]
    for name, closure in runs:
        kes = []
        with torch.no_grad():
            for n, x in lr.run_closed(truth[:1], 24 * 2 * args.days, 24, closure):
                if n > 24 * args.days and torch.isfinite(x).all():
                    kes.append(lr.energy(x)["ke"][0].numpy())
        ratio = np.mean(kes, 0) / ke_truth if kes else [float("nan")] * 2
        print(f"  LR {name:28s} KE / truth's: upper {ratio[0]:.2f}, lower {ratio[1]:.2f}", flush=True)


if __name__ == "__main__":
    main()
