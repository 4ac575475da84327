"""The online evaluation of subgrid closures: the coarse model run forward with a closure, world-agnostic.

* ``short_runs``: forecasts of ``n`` snapshots from true initial states, for the
  RMSE against the truth as a function of lead time;
* ``long_runs``: one continuous run per initial state, a spin-up discarded, then
  the states of every snapshot kept for the long-run statistics;
* blow-ups: after every snapshot, a run whose state is not finite or whose
  ``bound(x)`` is false is marked blown up at that snapshot (time-to-blow-up) and
  its states from then on are NaN; the other runs go on (they are independent
  batch members). A blow-up is a record, never a crash.
* ``similarity``: Ross et al. (2023): per metric 1 - d(closure, truth) / d(none,
  truth) (``metrics.similarity``), for every run of the closure against the
  mean distance of the no-closure runs; the mean and the minimum over metrics,
  averaged over the runs that did not blow up, with bootstrap intervals over
  runs.

The coarse model offers ``run_closed(x0, n_steps, every, closure)``
(``challenges.problems.ClosureProblem``).
"""
from __future__ import annotations

import lazy_loader as lazy
import numpy as np

torch = lazy.load("torch")
metrics = lazy.load("metrics")


def _run(model, closure, x0, n_snapshots: int, steps_per_snapshot: int, keep_from: int, bound):
    R = x0.shape[0]
    kept = np.full((R, n_snapshots - keep_from, *x0.shape[1:]), np.nan, dtype=np.float32)
    blown = np.full(R, -1, dtype=np.int64)
    with torch.no_grad():
        for n, x in model.run_closed(x0, n_snapshots * steps_per_snapshot, steps_per_snapshot, closure):
            k = n // steps_per_snapshot - 1
            flat = x.reshape(R, -1)
            bad = ~torch.isfinite(flat).all(1)
            if bound is not None:
                bad |= ~torch.as_tensor(bound(x), device=x.device).reshape(R).bool()
            for r in torch.nonzero(bad).flatten().tolist():
                if blown[r] < 0:
                    blown[r] = k
            if k >= keep_from:
                v = x.detach().cpu().numpy().astype(np.float32)
                v[blown >= 0] = np.nan
                kept[:, k - keep_from] = v
    return kept, blown


def short_runs(model, closure, x0, n_snapshots: int, steps_per_snapshot: int, bound=None):
    """States (R, n_snapshots, *state) at snapshots 1..n from x0 (R, *state); blow-up snapshot (R,) (-1: none)."""
    return _run(model, closure, x0, n_snapshots, steps_per_snapshot, 0, bound)


def long_runs(model, closure, x0, spinup: int, n_keep: int, steps_per_snapshot: int, bound=None):
    """States (R, n_keep, *state) after ``spinup`` snapshots of one continuous run each; blow-up snapshot (R,)."""
    return _run(model, closure, x0, spinup + n_keep, steps_per_snapshot, spinup, bound)


def nrmse_by_lead(states: np.ndarray, truth: np.ndarray, scale: float) -> np.ndarray:
    """RMSE / ``scale`` per lead of short runs (R, L, *state) against the truth (R, L, *state), NaN runs left out."""
    e = (states.astype(np.float64) - truth) ** 2
    e = e.reshape(e.shape[0], e.shape[1], -1).mean(-1)
    return np.sqrt(np.nanmean(e, axis=0)) / scale


def similarity_scores(distances: dict, reference: dict, blown: np.ndarray) -> dict:
    """Per-run similarities {metric: (R,)} -> {"mean": (value, lo, hi), "min": (...), "per_metric": {...}}.

    ``distances`` maps metric names to per-run distances (R,) of the closure's runs, ``reference``
    to those of the no-closure runs (their mean is the reference distance). Runs that blew up are
    left out; with none left every value is NaN.
    """
    names = sorted(distances)
    ok = blown < 0
    ref = {k: float(np.nanmean(reference[k])) for k in names}
    sims = np.array([[metrics.similarity(float(distances[k][r]), ref[k]) for k in names]
                     for r in range(len(blown))])                      # (R, n_metrics)
    sims = sims[ok]
    if len(sims) == 0:
        nan = (float("nan"),) * 3
        return {"mean": nan, "min": nan, "per_metric": {k: float("nan") for k in names}}
    per_run_mean = np.nanmean(sims, axis=1)
    per_run_min = np.nanmin(sims, axis=1)
    out = {}
    for key, v in (("mean", per_run_mean), ("min", per_run_min)):
        out[key] = (float(v.mean()), *metrics.bootstrap_ci(v))
    out["per_metric"] = {k: float(np.nanmean(sims[:, i])) for i, k in enumerate(names)}
    return out
