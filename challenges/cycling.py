"""World-agnostic DA cycling harness (``l96-cycle``, ``qg-cycle``).

A cycling experiment alternates analysis and forecast::

    xb_0 = the cycle-0 background (a cold start)
    for k in 0 .. n_cycles-1:
        xa_k   = method.predict(case_k(xb_k))      # the method sees (background, obs at cycle k)
        xb_k+1 = M(xa_k)                            # the harness forecasts with the world's model

Independent experiments (test trajectories; for tuning also parameter trials)
run side by side as one batch: every call to ``predict`` gets all of them, and
the forecast is one batched call of the model. If the analysis has a
``member`` dim, every member is forecast (the background of the next cycle is
then an ensemble).

The challenge supplies a ``CyclingProblem``: the cycle-0 background, a
``make_case(k, background)`` that adds cycle k's observations, the forecast
model (tensor in, tensor out) and optionally the truth, used only for
per-cycle error diagnostics (never shown to the method).

Blow-ups: an analysis or forecast with a non-finite value is replaced, for
that experiment only, by its cycle-0 background (its ensemble mean, for all
members alike), and the cycle is flagged in ``restarted``. The run therefore
never stops and a prediction never holds NaN; a filter that blew up is
scored with the error of the state it fell back to, and shows up in the
divergence metric.

Scoring helpers for cycled analyses live here too: the time-mean RMSE after
burn-in with a bootstrap over (experiment × time block) units, and cycles
until divergence.
"""
from __future__ import annotations

import math
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import xarray as xr

MEMBER = "member"


@dataclass
class CyclingProblem:
    """One batch of independent cycling experiments.

    ``background0``: the cycle-0 background, dims (*experiment dims, [member], *state_dims)
    (without members: a cold start, e.g. the climatological mean).
    ``make_case(k, background)``: the Dataset handed to ``predict`` at cycle k;
    ``background`` is a DataArray (*experiment dims, [member], *state_dims).
    ``forecast``: tensor (B, *state shape) -> the same, one cycle later.
    ``truth(k)``: the true state at cycle k, dims (*experiment dims or a subset, *state_dims).
    ``times``: the values of the ``time`` coordinate of the stored analyses (length n_cycles).
    """

    background0: xr.DataArray
    make_case: Callable[[int, xr.DataArray], xr.Dataset]
    forecast: Callable[[torch.Tensor], torch.Tensor]
    n_cycles: int
    state_dims: tuple[str, ...]
    times: np.ndarray | None = None
    truth: Callable[[int], xr.DataArray] | None = None
    var: str = "x"
    time_attrs: dict = field(default_factory=dict)

    @property
    def experiment_dims(self) -> tuple[str, ...]:
        return tuple(d for d in self.background0.dims if d not in self.state_dims and d != MEMBER)

    def with_trials(self, n_trials: int, dim: str = "trial") -> CyclingProblem:
        """The same experiments repeated ``n_trials`` times along a new leading dim (for tuning)."""
        b0 = self.background0.expand_dims({dim: np.arange(n_trials)})
        return replace(self, background0=b0)


def run(predict: Callable[[xr.Dataset], xr.Dataset], problem: CyclingProblem, store: bool = True,
        progress: Callable[[float], object] | None = None, progress_total: float = 1.0) -> xr.Dataset:
    """Cycle ``predict`` over ``problem``; return the analyses and per-cycle diagnostics.

    Returns a Dataset with
      - ``<var>`` (*experiment dims, time, [member], *state_dims): the analyses (if ``store``;
        ensembles are stored in float32, deterministic analyses in float64);
      - ``rmse`` (*experiment dims, time): spatial RMSE of the analysis (ensemble mean)
        against the truth (if ``problem.truth`` is given);
      - ``restarted`` (*experiment dims, time): True where the harness replaced a non-finite
        analysis or forecast by the cycle-0 background.
    ``attrs``: wall-clock seconds spent in ``predict`` and in the forecast model.
    ``progress(x)`` is called after every cycle with ``progress_total / n_cycles``.
    """
    exp_dims, sdims = problem.experiment_dims, problem.state_dims
    mdim = (MEMBER,) if MEMBER in problem.background0.dims else ()
    b0 = problem.background0.transpose(*exp_dims, *mdim, *sdims)
    exp_shape = tuple(b0.sizes[d] for d in exp_dims)
    state_shape = tuple(b0.sizes[d] for d in sdims)
    E = math.prod(exp_shape)
    x0 = torch.as_tensor(np.array(b0.values, dtype=np.float64)).reshape(E, *b0.shape[len(exp_dims):])
    if mdim:
        x0 = x0.mean(1)
    coords = {d: b0[d] for d in (*exp_dims, *sdims) if d in b0.coords}
    K = problem.n_cycles
    stored = None
    rmse = np.full((E, K), np.nan) if problem.truth is not None else None
    restarted = np.zeros((E, K), dtype=bool)
    n_members = None
    t_pred = t_fc = 0.0
    xb = b0
    for k in range(K):
        t = _time.perf_counter()
        pred = predict(problem.make_case(k, xb))
        t_pred += _time.perf_counter() - t
        xa = _analysis_tensor(pred, problem.var, exp_dims, sdims, exp_shape, state_shape, k)
        members = xa.shape[1] if xa.ndim == 2 + len(sdims) else None
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
                dtype = np.float32 if members else np.float64
                stored = np.empty((E, K, *xa.shape[1:]), dtype=dtype)
            stored[:, k] = xa.numpy()
        if rmse is not None:
            truth = values_as(problem.truth(k), (*exp_dims, *sdims), dict(b0.sizes))
            mean = xa.mean(1) if members else xa
            tv = torch.as_tensor(np.array(truth, dtype=np.float64)).reshape(E, *state_shape)
            rmse[:, k] = ((mean - tv) ** 2).reshape(E, -1).mean(1).sqrt().numpy()
        if k + 1 < K:
            t = _time.perf_counter()
            flat = xa.reshape(-1, *state_shape)
            fc = problem.forecast(flat).reshape(xa.shape)
            t_fc += _time.perf_counter() - t
            bad = ~torch.isfinite(fc.reshape(E, -1)).all(1)
            if bad.any():
                fc[bad] = _fallback(x0[bad], members)
                restarted[bad.numpy(), k + 1] = True
            dims = (*exp_dims, MEMBER, *sdims) if members else (*exp_dims, *sdims)
            xb = xr.DataArray(fc.reshape(*exp_shape, *fc.shape[1:]).numpy(), dims=dims, coords=coords)
        if progress is not None:
            progress(progress_total / K)
    times = problem.times if problem.times is not None else np.arange(K)
    tcoord = xr.Variable("time", np.asarray(times), problem.time_attrs)
    out = xr.Dataset(coords={**coords, "time": tcoord})
    if stored is not None:
        dims = (*exp_dims, "time", MEMBER, *sdims) if n_members else (*exp_dims, "time", *sdims)
        out[problem.var] = (dims, stored.reshape(*exp_shape, *stored.shape[1:]))
    if rmse is not None:
        out["rmse"] = ((*exp_dims, "time"), rmse.reshape(*exp_shape, K))
    out["restarted"] = ((*exp_dims, "time"), restarted.reshape(*exp_shape, K))
    out.attrs.update(predict_seconds=t_pred, forecast_seconds=t_fc, n_cycles=K)
    return out


def values_as(da: xr.DataArray, dims: tuple, sizes: dict) -> np.ndarray:
    """The values of ``da`` transposed and broadcast (numpy, read-only view) to ``dims`` of ``sizes``.

    ``da``'s dims must be a subset of ``dims``; much cheaper than xarray's broadcast_like.
    """
    extra = [d for d in da.dims if d not in dims]
    if extra:
        raise ValueError(f"{da.name or 'array'} has dims {extra} outside {dims}")
    v = np.asarray(da.transpose(*[d for d in dims if d in da.dims]).values)
    return np.broadcast_to(v.reshape([sizes[d] if d in da.dims else 1 for d in dims]), [sizes[d] for d in dims])


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


# -- scoring of cycled analyses ------------------------------------------------


def time_blocks(n_cycles: int, burn_in: int, block: int) -> list[slice]:
    """max(1, (n_cycles - burn_in) // block) equal consecutive blocks covering the cycles after
    ``burn_in`` (the remainder, fewer cycles than blocks, is dropped)."""
    n = n_cycles - burn_in
    if n <= 0:
        raise ValueError(f"burn-in ({burn_in}) must be shorter than the run ({n_cycles} cycles)")
    nb = max(1, n // block)
    size = n // nb
    return [slice(burn_in + i * size, burn_in + (i + 1) * size) for i in range(nb)]


def block_means(per_cycle: np.ndarray, blocks: list[slice]) -> np.ndarray:
    """Means of ``per_cycle`` (E, K) over each block: (E * n_blocks,) bootstrap units."""
    return np.stack([np.nanmean(per_cycle[:, b], axis=1) for b in blocks], axis=1).ravel()


def divergence_cycles(rmse: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """First cycle at which the trailing ``window``-cycle mean of ``rmse`` (E, K) exceeds
    ``threshold`` (checked from cycle ``window - 1`` on); K where that never happens."""
    E, K = rmse.shape
    if K < window:
        return np.full(E, K)
    c = np.cumsum(rmse, axis=1)
    run = (c[:, window - 1:] - np.concatenate([np.zeros((E, 1)), c[:, :-window]], axis=1)) / window
    over = run > threshold
    first = np.where(over.any(1), over.argmax(1) + window - 1, K)
    return first.astype(int)


def trial_rmse(predict: Callable[[xr.Dataset], xr.Dataset], problem: CyclingProblem, n_trials: int,
               burn_in: int, dim: str = "trial") -> np.ndarray:
    """Time-mean analysis RMSE after ``burn_in`` of each of ``n_trials`` parameter trials.

    The problem's experiments are repeated along ``dim`` and cycled in one batch;
    ``predict`` reads its parameters per trial from the case's ``dim`` coordinate. A
    trial in which any experiment needed a restart (blew up) scores +inf.
    """
    out = run(predict, problem.with_trials(n_trials, dim), store=False)
    rest = [d for d in out.rmse.dims if d not in (dim, "time")]
    score = out.rmse.isel(time=slice(burn_in, None)).mean(["time", *rest]).values
    blew_up = out.restarted.any(["time", *rest]).values
    return np.where(blew_up | ~np.isfinite(score), np.inf, score)
