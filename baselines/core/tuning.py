"""The one tuning helper: a search over a grid of parameter values on the validation split.

Two ways to evaluate, the same bookkeeping:

* ``batched``: every combination of the grid is one trial of a single batched
  validation run (``Split.evaluate(predict, n_trials)``: the method reads its
  parameters per trial through ``problem.param`` of ``trial`` DataArrays);
  cycling filters tune this way, all trials cycled side by side;
* ``coordinate``: a coordinate search from a starting point, one validation
  run per candidate (for methods whose cost depends on the parameters, such as
  OI's length scales), at most ``sweeps`` passes over the parameters.

Either way the helper prints progress (trial k of n and the best loss so far),
returns the best values, every trial's loss, and ``edge``: the parameters
whose best value lies at the end of their grid (a wider grid might do
better); the harness writes that flag into the results and the leaderboard's
Notes. Lower loss is better (the split's primary error).
"""
from __future__ import annotations

import itertools
import sys
import time

import lazy_loader as lazy
import numpy as np

xr = lazy.load("xarray")


def _edges(best: dict, grid: dict) -> dict:
    out = {}
    for name, values in grid.items():
        vals = sorted(values)
        if len(vals) > 1 and best[name] in (vals[0], vals[-1]):
            out[name] = {"value": best[name], "end": "low" if best[name] == vals[0] else "high",
                         "grid": [float(v) for v in vals]}
    return out


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def batched(method, split, grid: dict, label: str = "", progress: bool = True) -> dict:
    """Evaluate every combination of ``grid`` as trials of one batched validation run.

    Sets each parameter on ``method`` (as an attribute of that name) to a ``trial`` DataArray
    during the run and to the best value afterwards. Returns the tuning record.
    """
    names = list(grid)
    combos = list(itertools.product(*[list(grid[n]) for n in names]))
    for j, name in enumerate(names):
        setattr(method, name, xr.DataArray([float(c[j]) for c in combos], dims="trial"))
    t0 = time.perf_counter()
    _say(progress, f"tuning {label or method.name}: {len(combos)} trials of ({', '.join(names)}) in one batched "
                   f"validation run")
    losses = np.asarray(split.evaluate(method.predict, len(combos)), dtype=float)
    best = int(np.argmin(losses))
    values = {n: float(combos[best][j]) for j, n in enumerate(names)}
    for n, v in values.items():
        setattr(method, n, v)
    _say(progress, f"tuning {label or method.name}: best {values} (val loss {losses[best]:.4g}) after "
                   f"{time.perf_counter() - t0:.0f} s")
    return {"mode": "batched", "grid": {n: [float(v) for v in grid[n]] for n in names},
            "trials": [dict(zip(names, map(float, c)), val_loss=float(v)) for c, v in zip(combos, losses)],
            "best": values, "val_loss": float(losses[best]), "edge": _edges(values, grid)}


def coordinate(evaluate, start: dict, grid: dict, label: str = "", sweeps: int = 2, progress: bool = True) -> dict:
    """Coordinate search over ``grid`` from ``start``, minimising ``evaluate(params) -> loss``."""
    best = dict(start)
    seen: dict = {}
    total = 1 + sweeps * sum(len(v) for v in grid.values())
    trials = []
    t0 = time.perf_counter()

    def ev(p):
        key = tuple(sorted(p.items()))
        if key not in seen:
            t = time.perf_counter()
            seen[key] = float(np.ravel(evaluate(p))[0])
            trials.append({**p, "val_loss": seen[key], "seconds": round(time.perf_counter() - t, 2)})
            best_so_far = min(r["val_loss"] for r in trials)
            _say(progress, f"tuning {label}: trial {len(trials)} (at most {total}) {p} -> {seen[key]:.4g}; "
                           f"best so far {best_so_far:.4g}")
        return seen[key]

    best_loss = ev(best)
    for _ in range(sweeps):
        changed = False
        for name, cands in grid.items():
            for c in cands:
                trial = dict(best, **{name: c})
                loss = ev(trial)
                if loss < best_loss * (1.0 - 1e-6):  # a real improvement, not round-off
                    best, best_loss, changed = trial, loss, True
        if not changed:
            break
    _say(progress, f"tuning {label}: best {best} (val loss {best_loss:.4g}) after {len(trials)} trials, "
                   f"{time.perf_counter() - t0:.0f} s")
    return {"mode": "coordinate", "grid": {n: [float(v) for v in g] for n, g in grid.items()}, "start": start,
            "trials": trials, "best": best, "val_loss": best_loss, "edge": _edges(best, grid)}


def fixed(values: dict) -> dict:
    """The record of parameters taken as given (no tuning)."""
    return {"mode": "fixed", "best": dict(values), "val_loss": None, "edge": {}}


def single(label: str, values: dict, loss: float) -> dict:
    """The record of a choice among named candidates (e.g. which B), for ``describe``."""
    return {"mode": "choice", "label": label, "best": values, "val_loss": float(loss), "edge": {}}
