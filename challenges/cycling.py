"""World-agnostic DA cycling harness (``l96-cycle``, ``qg-cycle`` and their variants).

A cycling experiment alternates analysis and forecast::

    xb_0 = the cycle-0 background (a cold start: the climatological mean, no members)
    for k in 0 .. n_cycles-1:
        xa_k   = method.predict(problem_k(xb_k))    # an AnalysisProblem: background + obs of cycle k
        xb_k+1 = M(xa_k)                             # the harness forecasts with the world's model

Independent experiments (test trajectories; for tuning also parameter trials)
run side by side as one batch: every call to ``predict`` gets all of them, and
the forecast is one batched call of the model. If the analysis has a
``member`` dim, every member is forecast (the background of the next cycle is
then an ensemble).

The challenge supplies a ``CyclingExperiment``: the cycle-0 background, a
``make_problem(k, background)`` that adds cycle k's observations, the forecast
model (tensor in, tensor out), and optionally the truth and an ``error``
(per-experiment analysis error of the ensemble mean against the truth), used
only for diagnostics and validation scores (never shown to the method).

Blow-ups: an analysis or forecast with a non-finite value is replaced, for
that experiment only, by its cycle-0 background (for all members alike), and
the cycle is flagged in ``restarted``. The run never stops and never holds
NaN; the scores count a restarted cycle as diverged (``metrics.divergence_cycles``)
and the results record how many cycles were restarted.
"""
from __future__ import annotations

import math
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import lazy_loader as lazy
import numpy as np

torch = lazy.load("torch")
xr = lazy.load("xarray")

MEMBER = "member"


@dataclass(frozen=True)
class CyclingExperiment:
    """One batch of independent cycling experiments.

    ``background0``: (E, *state_shape) cold start per experiment (E = prod(exp_shape)).
    ``make_problem(k, background)``: the ``AnalysisProblem`` of cycle k for a background
    (E, [M], *state_shape); it carries ``exp_dims``/``exp_shape`` as its batch dims.
    ``forecast``: (N, *state_shape) -> the same, one cycle later.
    ``truth(k)``: (E, *state_shape) true states at cycle k (broadcast over trials by the caller).
    ``error(x, truth)``: per-experiment error (E,) of states x (E, *state_shape).
    """

    background0: torch.Tensor
    make_problem: Callable
    forecast: Callable
    n_cycles: int
    exp_dims: tuple[str, ...]
    exp_shape: tuple[int, ...]
    state_dims: tuple[str, ...]
    coords: dict = field(default_factory=dict)
    times: np.ndarray | None = None
    truth: Callable | None = None
    error: Callable | None = None
    var: str = "x"
    time_attrs: dict = field(default_factory=dict)

    def with_trials(self, n_trials: int) -> CyclingExperiment:
        """The same experiments repeated ``n_trials`` times along a new leading ``trial`` dim (for tuning)."""
        b0 = self.background0.unsqueeze(0).expand(n_trials, *self.background0.shape)
        b0 = b0.reshape(-1, *self.background0.shape[1:])
        truth = None if self.truth is None else (
            lambda k, f=self.truth: f(k).unsqueeze(0).expand(n_trials, *f(k).shape).reshape(-1, *f(k).shape[1:]))
        base = self.make_problem

        def make_problem(k, background):
            return base(k, background, trials=n_trials)

        return replace(self, background0=b0, make_problem=make_problem, truth=truth,
                       exp_dims=("trial", *self.exp_dims), exp_shape=(n_trials, *self.exp_shape),
                       coords={**self.coords, "trial": np.arange(n_trials)})


def run(predict: Callable, exp: CyclingExperiment, store: bool = True, progress: Callable | None = None,
        n_cycles: int | None = None) -> xr.Dataset:
    """Cycle ``predict`` over ``exp``; return the analyses and per-cycle diagnostics.

    Returns a Dataset with
      - ``<var>`` (*exp dims, time, [member], *state_dims): the analyses (if ``store``; ensembles
        in float32, deterministic analyses in float64);
      - ``error`` (*exp dims, time): ``exp.error`` of the analysis (ensemble mean) (if given);
      - ``restarted`` (*exp dims, time): True where the harness replaced a non-finite analysis
        or forecast by the cycle-0 background.
    ``attrs``: wall-clock seconds in ``predict`` and in the forecast model. ``progress(1)`` is
    called after every cycle.
    """
    K = exp.n_cycles if n_cycles is None else min(n_cycles, exp.n_cycles)
    E = math.prod(exp.exp_shape)
    x0 = exp.background0.to(torch.float64)
    state_shape = tuple(x0.shape[1:])
    nsd = len(state_shape)
    stored = None
    err = np.full((E, K), np.nan) if exp.error is not None and exp.truth is not None else None
    restarted = np.zeros((E, K), dtype=bool)
    n_members = None
    t_pred = t_fc = 0.0
    xb = x0
    for k in range(K):
        t = _time.perf_counter()
        problem = exp.make_problem(k, xb)
        pred = predict(problem)
        t_pred += _time.perf_counter() - t
        xa = _analysis_tensor(pred, exp.var, exp.exp_dims, exp.state_dims, exp.exp_shape, state_shape, k)
        members = xa.shape[1] if xa.ndim == 2 + nsd else None
        if k == 0:
            n_members = members
        elif members != n_members:
            raise ValueError(f"the method returned {members or 'no'} members at cycle {k} "
                             f"but {n_members or 'no'} before; the ensemble size must stay fixed")
        bad = ~torch.isfinite(xa.reshape(E, -1)).all(1)
        if bad.any():
            xa[bad] = _fallback(x0[bad], members)
            restarted[bad.numpy(), k] = True
        if store:
            if stored is None:
                stored = np.empty((E, K, *xa.shape[1:]), dtype=np.float32 if members else np.float64)
            stored[:, k] = xa.numpy()
        if err is not None:
            mean = xa.mean(1) if members else xa
            err[:, k] = np.asarray(exp.error(mean, exp.truth(k)), dtype=np.float64)
        if k + 1 < K:
            t = _time.perf_counter()
            fc = exp.forecast(xa.reshape(-1, *state_shape)).reshape(xa.shape)
            t_fc += _time.perf_counter() - t
            bad = ~torch.isfinite(fc.reshape(E, -1)).all(1)
            if bad.any():
                fc[bad] = _fallback(x0[bad], members)
                restarted[bad.numpy(), k + 1] = True
            xb = fc
        if progress is not None:
            progress(1)
    times = exp.times[:K] if exp.times is not None else np.arange(K)
    coords = {**{d: c for d, c in exp.coords.items()}, "time": xr.Variable("time", np.asarray(times), exp.time_attrs)}
    out = xr.Dataset(coords=coords)
    if stored is not None:
        dims = (*exp.exp_dims, "time", MEMBER, *exp.state_dims) if n_members else (*exp.exp_dims, "time", *exp.state_dims)
        out[exp.var] = (dims, stored.reshape(*exp.exp_shape, *stored.shape[1:]))
    if err is not None:
        out["error"] = ((*exp.exp_dims, "time"), err.reshape(*exp.exp_shape, K))
    out["restarted"] = ((*exp.exp_dims, "time"), restarted.reshape(*exp.exp_shape, K))
    out.attrs.update(predict_seconds=t_pred, forecast_seconds=t_fc, n_cycles=K)
    return out


def _analysis_tensor(pred, var, exp_dims, sdims, exp_shape, state_shape, k) -> torch.Tensor:
    """The analysis of ``pred`` as a float64 tensor (E, [M], *state); a clear error if malformed."""
    if not isinstance(pred, xr.Dataset) or var not in pred:
        raise ValueError(f"at cycle {k} the method must return a Dataset holding {var!r}")
    da = pred[var]
    want = set(exp_dims) | set(sdims)
    if set(da.dims) - {MEMBER} != want:
        raise ValueError(f"at cycle {k} the analysis {var!r} has dims {da.dims}; expected "
                         f"{(*exp_dims, *sdims)} with an optional {MEMBER!r} dim")
    dims = (*exp_dims, MEMBER, *sdims) if MEMBER in da.dims else (*exp_dims, *sdims)
    da = da.transpose(*dims)
    sizes = tuple(da.sizes[d] for d in (*exp_dims, *sdims))
    if sizes != (*exp_shape, *state_shape):
        raise ValueError(f"at cycle {k} the analysis {var!r} has sizes {dict(da.sizes)}; expected "
                         f"{dict(zip((*exp_dims, *sdims), (*exp_shape, *state_shape)))}")
    t = torch.as_tensor(np.array(da.values, dtype=np.float64))
    return t.reshape(math.prod(exp_shape), *t.shape[len(exp_dims):])


def _fallback(x0: torch.Tensor, members: int | None) -> torch.Tensor:
    return x0 if not members else x0.unsqueeze(1).expand(-1, members, *x0.shape[1:])


def trial_losses(predict: Callable, exp: CyclingExperiment, n_trials: int | None, burn_in: int,
                 n_cycles: int | None = None) -> np.ndarray:
    """Time-mean analysis error after ``burn_in`` per parameter trial (a trial that needed a restart: +inf).

    The experiments are repeated along ``trial`` and cycled in one batch; ``predict`` reads its
    parameters per trial through ``problem.param``. ``n_trials=None``: one trial, the problem
    as it is.
    """
    trials = 1 if n_trials is None else n_trials
    e = exp if n_trials is None else exp.with_trials(trials)
    out = run(predict, e, store=False, n_cycles=n_cycles)
    K = out.sizes["time"]
    burn = min(burn_in, K // 2)
    err = out["error"].values.reshape(trials, -1, K)[:, :, burn:]
    blew = out["restarted"].values.reshape(trials, -1).any(1)
    score = err.mean((1, 2))
    return np.where(blew | ~np.isfinite(score), np.inf, score)
