"""DiffDA on a mapping challenge: the ensemble-mean map's error against the known field's rule and window (val only).

    python benchmarks/diffda_map_window.py runs/checkpoints/<key>/model.pt [--challenge qg-map]
        [--windows 1,5,10,15] [--members 4] [--param key=value ...]

Loads a trained ``diffda`` prior of maps and scores it with the val split's own ``evaluate``
(the fixed subset of val days, never test) for the paper's blend (observations of +-1 day
copied in) and for the matched replacement at each window (every observation within +-w days,
its error E(|t|) about the map of the day measured on train, docs/methods.md). For each matched
window it also prints the known field's calibration on those days: the mean square error of
x_tilde against the true map at observed cells over its predicted variance (1: calibrated;
the variance model is fitted on train, so this checks it on other days).
``benchmarks/README_learned.md`` quotes the output.
"""
from __future__ import annotations

import torch

from diffda_common import load, parser, setup


def calibration(method, val) -> float:
    """mean (x_tilde - z)^2 / mean predicted variance, over the observed cells of the val problems' days."""
    n = method.learner.norm
    f = val._fields()
    se = pv = 0.0
    for tr, problem in zip(f["traj"].values, val.problems()):
        xt, var = method.known_map_of(problem.windows(method.config.half_window))
        z = (f["ssh"].sel(traj=int(tr), time=problem.times).values - n.state_mean[0]) / n.state_std[0]
        obs = torch.isfinite(var)[:, 0].numpy()
        se += float((((xt[:, 0].numpy() - z) ** 2)[obs]).sum())
        pv += float(var[:, 0].numpy()[obs].sum())
    return se / pv


def main(argv=None) -> int:
    ap = parser(__doc__, "qg-map")
    ap.add_argument("--windows", default="1,5,10,15")
    args = ap.parse_args(argv)
    ch, train, val, extra = setup(args)

    def run(replacement: str, window: float):
        m = load(ch, train, val, args, replacement=replacement, half_window=window)
        err = float(val.evaluate(m.predict)[0])
        return 1.0 - err, calibration(m, val) if replacement == "matched" else float("nan"), m

    print(f"{args.challenge} {args.size}: val days of `evaluate`, {args.members} members, {extra or 'defaults'}")
    print("| known field | window (days) | 1 - relative RMSE | E(0) | rho | val MSE / predicted variance |")
    print("|---|---:|---:|---:|---:|---:|")
    mu, _, _ = run("blend", 1.0)
    print(f"| blend (paper), w = 1 | 1 | {mu:.3f} | | | |")
    for w in (float(v) for v in args.windows.split(",")):
        mu, cal, m = run("matched", w)
        e = m.map_error
        print(f"| matched | {w:g} | {mu:.3f} | {e['per_obs'][0]:.3f} | {e['rho']:.2f} | {cal:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
