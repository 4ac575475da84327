"""Scores with bootstrap intervals over resampling units, vectorised over resamples.

A *unit* is a group of cases resampled together (a trajectory's block of
consecutive days, whose errors are correlated; or one case). A resample draws
units with replacement (``bootstrap.resample_indices`` with the given seed) and
pools their cases; a statistic of per-case *sums* is then a statistic of
``counts @ unit_sums`` (one matrix product for all resamples), never a loop that
rebuilds arrays per resample. The interval is the percentile interval of the
resampled statistic (95 % by default).

Every function returns ``(value, low, high)`` or a dict of them.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .bootstrap import percentile_interval, resample_counts
from .spectral import _crossing


def _units(units, n_cases: int) -> list[np.ndarray]:
    return [np.array([i]) for i in range(n_cases)] if units is None else [np.asarray(u) for u in units]


def _unit_sums(v: np.ndarray, units: list[np.ndarray]) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.stack([v[u].sum(0) for u in units])


def bootstrap_sums(values: dict, stat: Callable, units=None, n: int = 1000, seed: int = 0,
                   alpha: float = 0.05) -> tuple[float, float, float]:
    """A statistic of per-case sums with its interval.

    ``values``: {name: per-case array (n_cases, ...)}; ``stat(sums)`` gets {name: sum over the
    pooled cases} with an extra leading resample dim (the full-sample value uses a leading dim
    of 1) and returns one number per resample. Example: µ = 1 - sqrt(Σ err² / Σ ref²) is
    ``stat=lambda s: 1 - np.sqrt(s["se"] / s["sr"])``.
    """
    n_cases = len(next(iter(values.values())))
    units = _units(units, n_cases)
    us = {k: _unit_sums(v, units) for k, v in values.items()}
    counts = resample_counts(len(units), n, seed)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = float(np.asarray(stat({k: v.sum(0)[None] for k, v in us.items()})).reshape(-1)[0])
        boot = np.asarray(stat({k: np.tensordot(counts, v, axes=(1, 0)) for k, v in us.items()}), dtype=float)
    lo, hi = percentile_interval(boot, alpha)
    return full, lo, hi


def rmse_mu_sigma(se, sr, count, units=None, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """RMSE, µ = 1 - RMSE/RMS(ref) and σ = std over cases of 1 - RMSE_c/RMS_c (2020a), with intervals.

    ``se``, ``sr``, ``count``: per-case Σ err², Σ ref² and point counts (``metrics.per_time_sums``
    with the case dim as time). σ of a resample is the multiplicity-weighted std of its cases.
    """
    se, sr, count = (np.asarray(a, dtype=np.float64) for a in (se, sr, count))
    units = _units(units, len(se))
    out = {
        "rmse": bootstrap_sums({"se": se, "n": count}, lambda s: np.sqrt(s["se"] / s["n"]), units, n, seed, alpha),
        "mu": bootstrap_sums({"se": se, "sr": sr}, lambda s: 1.0 - np.sqrt(s["se"] / s["sr"]), units, n, seed, alpha),
    }
    ok = (count > 0) & (sr > 0)
    score = np.where(ok, 1.0 - np.sqrt(se / np.where(ok, sr, 1.0)), 0.0)
    unit_of = np.empty(len(se), dtype=np.int64)
    for k, u in enumerate(units):
        unit_of[u] = k
    w = resample_counts(len(units), n, seed)[:, unit_of] * ok
    with np.errstate(divide="ignore", invalid="ignore"):
        nw = w.sum(1)
        m1 = (w @ score) / nw
        boot = np.sqrt(np.maximum((w @ score ** 2) / nw - m1 ** 2, 0.0))
    value = float(np.std(score[ok])) if ok.any() else float("nan")
    out["sigma"] = (value, *percentile_interval(boot, alpha))
    return out


def isotropic_lambda(psd_err: np.ndarray, psd_ref: np.ndarray, wavelength: np.ndarray, resolved: float,
                     unresolved: float, units=None, n: int = 1000, seed: int = 0,
                     alpha: float = 0.05) -> tuple[float, float, float, str]:
    """Isotropic effective resolution from per-case ring spectra (n_cases, n_k) of err and ref.

    The score 1 - PSD(err)/PSD(ref) of the case-averaged spectra crosses 0.5 at λ (log-linear
    interpolation, ``metrics.isotropic_from_psd``); a resample averages the spectra of its
    pooled cases. Returns (λ, low, high, flag of the full-sample λ).
    """
    e, r = np.asarray(psd_err, float), np.asarray(psd_ref, float)
    units = _units(units, len(e))
    ue, ur = _unit_sums(e, units), _unit_sums(r, units)
    size = np.array([len(u) for u in units], dtype=float)
    counts = resample_counts(len(units), n, seed)

    def lam(es, rs):
        with np.errstate(divide="ignore", invalid="ignore"):
            s = 1.0 - es / rs
        if not (np.all(np.isfinite(es)) and np.all(np.isfinite(rs))):
            return float("nan"), "nan_input"
        return _crossing(np.asarray(wavelength, float), s, resolved, unresolved)

    value, flag = lam(ue.sum(0) / size.sum(), ur.sum(0) / size.sum())
    tot = counts @ size
    be, br = (counts @ ue) / tot[:, None], (counts @ ur) / tot[:, None]
    boot = np.array([lam(be[b], br[b])[0] for b in range(n)])
    return value, *percentile_interval(boot, alpha), flag


def spread_skill(se, var, members: int, units=None, n: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float, float]:
    """sqrt((M+1)/M) sqrt(Σ var / Σ se) over cases (finite-ensemble factor; 1 when calibrated)."""
    f = np.sqrt((members + 1) / members)
    return bootstrap_sums({"v": var, "e": se}, lambda s: f * np.sqrt(s["v"] / s["e"]), units, n, seed, alpha)
