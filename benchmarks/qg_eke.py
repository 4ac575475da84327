"""Equilibrium eddy kinetic energy of the ``eddy`` configuration, to compare with pyqg.

Runs a small ensemble of ``data_scripts.qg.QGModel(**EDDY)`` (dt = 3600 s) from
pyqg-style random initial conditions for ``--years`` years and averages the
per-layer EKE over ``--avg-from``..end (default years 5-10).

EKE per layer = 0.5 * mean over the grid of (u^2 + v^2), with (u, v) the eddy
velocities (background U excluded): pyqg's ``EKE`` diagnostic
(``Model._initialize_core_diagnostics``), evaluated here exactly by Parseval
from the spectral streamfunction. Samples are taken once a model day.

Writes a JSON summary (and the daily series as .npz next to it); checkpoints
every simulated year so that a killed run can resume (the resumed run restarts
the Adams-Bashforth scheme with one Euler step, which is statistically
irrelevant).

    nice -n 10 python benchmarks/qg_eke.py --nx 64 --batch 4 --out /tmp/qg_eke_64.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from data_scripts.qg import EDDY, QGModel, keep_freed_memory  # noqa: E402

YEAR = 365 * 86400.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nx", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--years", type=float, default=10.0)
    ap.add_argument("--avg-from", type=float, default=5.0, help="start of the averaging window (years)")
    ap.add_argument("--dt", type=float, default=3600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--out", required=True, help="JSON summary path")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    keep_freed_memory()
    m = QGModel(nx=args.nx, **dict(EDDY, dt=args.dt), dtype=getattr(torch, args.dtype))
    steps_per_day = int(round(86400.0 / args.dt))
    n_days = int(round(args.years * 365))
    ckpt = args.out + ".ckpt.pt"
    series = np.zeros((0, args.batch, m.nz))
    day0 = 0
    if os.path.exists(ckpt):
        st = torch.load(ckpt)
        q, series, day0 = st["q"], st["series"], st["day"]
        print(f"resuming at day {day0}", flush=True)
    else:
        q = torch.cat([m.initial_condition(1, seed=args.seed + b) for b in range(args.batch)])
    t0 = time.time()
    rows = [series]
    chunk = 365
    while day0 < n_days:
        nd = min(chunk, n_days - day0)
        block = []
        for _, qn in m.run(q, nd * steps_per_day, steps_per_day):
            block.append(m.energy(qn)["ke"].double().cpu().numpy())
        q = qn
        if not torch.isfinite(q).all():
            raise RuntimeError(f"non-finite state at day {day0 + nd}")
        rows.append(np.stack(block))
        series = np.concatenate(rows)
        rows = [series]
        day0 += nd
        torch.save({"q": q, "series": series, "day": day0}, ckpt)
        el = time.time() - t0
        print(f"day {day0}/{n_days}  wall {el:.0f} s  EKE1 {series[-1, :, 0].mean():.3e}  "
              f"EKE2 {series[-1, :, -1].mean():.3e}", flush=True)
    i0 = int(round(args.avg_from * 365))
    win = series[i0:]
    per_member = win.mean(0)
    summary = dict(
        nx=args.nx, batch=args.batch, dt=args.dt, years=args.years, avg_window_years=[args.avg_from, args.years],
        dtype=args.dtype, threads=args.threads, wall_s_this_session=time.time() - t0,
        eke_mean=per_member.mean(0).tolist(), eke_member_std=per_member.std(0, ddof=1).tolist() if args.batch > 1 else None,
        eke_per_member=per_member.tolist(),
        definition="0.5*mean(u^2+v^2) per layer, eddy velocities, daily samples, averaged over the window",
    )
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    np.savez(os.path.splitext(args.out)[0] + "_series.npz", eke=series, days=np.arange(1, len(series) + 1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
