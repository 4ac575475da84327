"""Percentile bootstrap confidence intervals over test cases.

Cases (test trajectories, days, rows, ...) are resampled with replacement, n times, with
``numpy.random.default_rng(seed)``; the interval is the (alpha/2, 1 - alpha/2) percentile
range of the resampled statistic. The same seed gives the same resamples everywhere in
``metrics`` (see :func:`resample_indices`), so intervals are reproducible bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import xarray as xr


def resample_indices(n_cases: int, n: int = 1000, seed: int = 0) -> np.ndarray:
    """(n, n_cases) integer case indices drawn with replacement; deterministic given seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_cases, size=(n, n_cases))


def resample_counts(n_cases: int, n: int = 1000, seed: int = 0) -> np.ndarray:
    """(n, n_cases) multiplicity of each case in each resample (same draws as resample_indices)."""
    idx = resample_indices(n_cases, n, seed)
    flat = (idx + n_cases * np.arange(n)[:, None]).ravel()
    return np.bincount(flat, minlength=n * n_cases).reshape(n, n_cases).astype(float)


def percentile_interval(values, alpha: float = 0.05) -> tuple[float, float]:
    """NaN-skipping (alpha/2, 1 - alpha/2) quantiles; (nan, nan) if nothing is finite."""
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).any():
        return (float("nan"), float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(np.where(np.isfinite(v), v, np.nan), [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def bootstrap_ci(
    data,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    statistic: Callable | None = None,
    n_cases: int | None = None,
) -> tuple[float, float]:
    """95 % (by default) percentile bootstrap interval over test cases.

    ``data`` is either
      * per-case values (1-D array-like or DataArray): resampled, then ``statistic``
        (default: NaN-skipping mean) of each resample; or
      * a function ``f(indices) -> float`` of an integer array of ``n_cases`` case indices,
        for statistics that are not means of per-case values (e.g. µ from per-time sums).
    Returns (low, high). Never raises on NaN: non-finite resampled statistics are skipped.
    """
    if callable(data):
        if n_cases is None:
            raise ValueError("n_cases is required when data is a function of case indices")
        if n_cases < 1:
            return (float("nan"), float("nan"))
        idx = resample_indices(n_cases, n, seed)
        vals = np.array([float(data(i)) for i in idx])
        return percentile_interval(vals, alpha)
    v = np.asarray(data.values if isinstance(data, xr.DataArray) else data, dtype=float).ravel()
    if v.size == 0:
        return (float("nan"), float("nan"))
    idx = resample_indices(v.size, n, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if statistic is None:
            vals = np.nanmean(v[idx], axis=1)
        else:
            vals = np.array([float(statistic(v[i])) for i in idx])
    return percentile_interval(vals, alpha)
