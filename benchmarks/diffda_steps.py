"""DiffDA: analysis error against the number of sampling steps, on the val split (never test).

    python benchmarks/diffda_steps.py runs/checkpoints/<key>/model.pt [--challenge l96-da] [--cases 200]
        [--param key=value ...]

Loads a trained ``diffda`` model and samples the ensemble-mean analysis of a seeded subset
of val cases (``l96-da``: per density; ``qg-da`` and its variants: per val trajectory, scored
in SSH as the challenge scores) with DDIM at several step counts (the
method's eta, or ``--param eta=...``) and, when eta is not 1, with DDPM at the longest, and
prints each RMSE, the ensemble's spread/skill, and the RMSE's ratio to the 1000-step
reference computed in the same process, with the sampling time. ``--param`` sets any other
``diffda`` setting (e.g. ``replacement=blend``) for every run.
``benchmarks/README_learned.md`` quotes the output.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from bench.registry import get_method
from challenges import l96_world as W
from challenges import qg_world as QW
from challenges.qg_base import problem_from_dataset
from diffda_common import load, parser, setup


def l96_cases(ch, val, n: int, rng) -> list:
    """[(problem, truth (case, i), to_error_space)] per density: ``n`` seeded val cases each."""
    data = val._data()
    out = []
    for f in ch.densities:
        idx = np.flatnonzero(data.density.values == f)
        idx = np.sort(rng.choice(idx, size=min(n, idx.size), replace=False))
        d = data.isel(case=idx)
        out.append((W.problem_from_dataset(d.drop_vars("x_true")), d.x_true.values, lambda a: a))
    return out


def qg_cases(ch, val, n: int, rng, size: str) -> list:
    """[(problem, true SSH (time, y, x), SSH of q)] per val trajectory: ``n`` seeded analysis days each."""
    truth = ch.analysis_truth(size, val.root, "val")["q"]
    out = []
    for i in range(truth.sizes["traj"]):
        case = ch.case(size, i, "val", val.root)
        idx = np.sort(rng.choice(case.sizes["time"], size=min(n, case.sizes["time"]), replace=False))
        t = truth.isel(traj=i, time=idx).transpose("time", "lev", "y", "x").values
        out.append((problem_from_dataset(case.isel(time=idx)), QW.ssh_of_q_np(size, t),
                    lambda q: QW.ssh_of_q_np(size, q)))
    return out


def main(argv=None) -> int:
    ap = parser(__doc__, "l96-da", "l96-da or a qg-da variant")
    ap.add_argument("--cases", type=int, default=200, help="val cases per density (l96) or trajectory (qg), seeded")
    ap.add_argument("--steps", default="10,25,50,100,1000")
    args = ap.parse_args(argv)
    ch, train, val, extra = setup(args)
    rng = np.random.default_rng(0)
    var_name = ch.variables[0]
    cases = (l96_cases(ch, val, args.cases, rng) if args.challenge == "l96-da"
             else qg_cases(ch, val, args.cases, rng, args.size))

    def run(steps: int, sampler: str = "ddim"):
        m = load(ch, train, val, args, n_steps=steps, sampler=sampler)
        torch.manual_seed(0)
        se, var, n, t0 = 0.0, 0.0, 0, time.perf_counter()
        for problem, truth, err_space in cases:
            ens = m.predict(problem)[var_name]
            ens = ens.transpose("member", *[d for d in ens.dims if d != "member"]).values
            e = err_space(ens)
            se += float(((e.mean(0) - truth) ** 2).sum())
            var += float(e.var(0, ddof=1).sum())
            n += truth.size
        return float(np.sqrt(se / n)), float(np.sqrt(var / se)), time.perf_counter() - t0

    steps = [int(s) for s in args.steps.split(",")]
    eta = float(get_method("diffda", ch, extra, progress=False).config.eta)
    ref, ref_ss, ref_t = run(max(steps))
    print(f"{args.challenge} {args.size}: {len(cases)} groups x {args.cases} val cases, {args.members} members, "
          f"{extra or 'defaults'}")
    print(f"| sampler | steps (network evaluations) | RMSE of the mean | spread/skill | ratio to {max(steps)} steps "
          "| sampling s |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in steps:
        rmse, ss, t = (ref, ref_ss, ref_t) if s == max(steps) else run(s)
        print(f"| DDIM eta {eta:g} | {s} | {rmse:.4f} | {ss:.2f} | {rmse / ref:.3f} | {t:.1f} |")
    if eta != 1.0:
        rmse, ss, t = run(max(steps), "ddpm")
        print(f"| DDPM | {max(steps)} | {rmse:.4f} | {ss:.2f} | {rmse / ref:.3f} | {t:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
