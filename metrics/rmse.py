"""RMSE-based scores of the ocean data challenge 2020a (µ, σ) and raw RMSE.

Definitions (err = pred - ref; sums over valid points, i.e. where both are finite, so a
masked point is left out of numerator and denominator alike):

* RMSE  = sqrt(Σ err² / N) over all points and times, in the field's units;
* µ     = 1 - RMSE / RMS(ref) = 1 - sqrt(Σ err² / Σ ref²) over all points and times;
* score_t = 1 - RMSE_t / RMS_t(ref) per time (sums over the other dims);
* σ     = standard deviation over time of score_t (ddof = 0, as xarray's ``std`` in 2020a).

Everything reduces to three per-time sums (Σerr², Σref², N), computed in one pass, so
bootstrap intervals over times are cheap (:func:`scores_ci`).
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

import dask
import dask.array as dsa

from ._common import align, is_dask, require_dims
from .bootstrap import percentile_interval, resample_counts


def _sums_np(p: np.ndarray, r: np.ndarray):
    """Fused per-row sums on (T, M) float64 arrays; fast path without masked points."""
    e = p - r
    valid = np.isfinite(e)
    if valid.all():
        n = np.full(e.shape[0], float(e.shape[1]))
    else:
        e, r = np.where(valid, e, 0.0), np.where(valid, r, 0.0)
        n = valid.sum(axis=1).astype(np.float64)
    return np.einsum("ij,ij->i", e, e), np.einsum("ij,ij->i", r, r), n


def per_time_sums(pred: xr.DataArray, ref: xr.DataArray, time: str | None = "time") -> xr.Dataset:
    """Per-time Σerr², Σref² and valid-point count (dims: (time,)); computed, numpy-backed.

    With ``time=None`` everything is summed into a single pseudo-time.
    """
    pred, ref = align(pred, ref)
    if time is None:
        time = "_all"
        pred, ref = pred.expand_dims(time), ref.expand_dims(time)
    require_dims(pred, [time], "pred")
    require_dims(ref, [time], "ref")
    if set(pred.dims) != set(ref.dims):
        raise ValueError(f"pred dims {list(pred.dims)} differ from ref dims {list(ref.dims)}")
    order = (time, *[d for d in ref.dims if d != time])
    p = pred.transpose(*order).data
    r = ref.transpose(*order).data
    nt = ref.sizes[time]
    if is_dask(p) or is_dask(r):
        p, r = dsa.asarray(p).astype(np.float64), dsa.asarray(r).astype(np.float64)
        axes = tuple(range(1, p.ndim))
        e = p - r
        valid = dsa.isfinite(e)
        e, r0 = dsa.where(valid, e, 0.0), dsa.where(valid, r, 0.0)
        se, sr, n = dask.compute((e * e).sum(axes), (r0 * r0).sum(axes), valid.sum(axes).astype(np.float64))
    else:
        p = np.asarray(p, dtype=np.float64).reshape(nt, -1)
        r = np.asarray(r, dtype=np.float64).reshape(nt, -1)
        se, sr, n = _sums_np(p, r)
    coords = {time: ref[time]} if time in ref.coords else {}
    return xr.Dataset(
        {"sq_err": ((time,), se), "sq_ref": ((time,), sr), "count": ((time,), n)},
        coords=coords,
    )


def _arrays(sums: xr.Dataset):
    return (np.asarray(sums[k].values, dtype=float) for k in ("sq_err", "sq_ref", "count"))


def scores_from_sums(sums: xr.Dataset, index=None) -> dict:
    """rmse, mu, sigma from :func:`per_time_sums`; ``index`` selects (resampled) times."""
    se, sr, n = _arrays(sums)
    if index is not None:
        se, sr, n = se[index], sr[index], n[index]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tot_se, tot_sr, tot_n = se.sum(), sr.sum(), n.sum()
        rmse = np.sqrt(tot_se / tot_n) if tot_n > 0 else np.nan
        mu = 1.0 - np.sqrt(tot_se / tot_sr) if tot_sr > 0 else np.nan
        ok = (n > 0) & (sr > 0)
        score_t = 1.0 - np.sqrt(se[ok] / sr[ok])
        sigma = np.std(score_t) if score_t.size else np.nan
    return {"rmse": float(rmse), "mu": float(mu), "sigma": float(sigma)}


def scores(pred: xr.DataArray, ref: xr.DataArray, time: str | None = "time") -> dict:
    """µ, σ and RMSE of ``pred`` against ``ref`` (2020a definitions; see module doc).

    ``time`` names the dim that σ is taken over (any case dim works); ``None`` pools
    everything, and σ is then NaN. Returns {"rmse", "mu", "sigma"} as floats.
    """
    out = scores_from_sums(per_time_sums(pred, ref, time))
    if time is None:
        out["sigma"] = float("nan")
    return out


def score_by_time(pred: xr.DataArray, ref: xr.DataArray, time: str = "time") -> xr.Dataset:
    """Per-time series: ``rmse`` (RMSE_t) and ``score`` (1 - RMSE_t/RMS_t(ref)) over ``time``."""
    sums = per_time_sums(pred, ref, time)
    with np.errstate(divide="ignore", invalid="ignore"):
        n, sr = sums["count"], sums["sq_ref"]
        rmse = np.sqrt(sums["sq_err"] / n.where(n > 0))
        score = 1.0 - np.sqrt(sums["sq_err"] / sr.where(sr > 0))
    return xr.Dataset({"rmse": rmse, "score": score})


def scores_ci(sums: xr.Dataset, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Bootstrap intervals of rmse, mu, sigma resampling times (cases) with replacement.

    Vectorised over resamples (weighted sums with resample multiplicities); uses the same
    draws as ``bootstrap_ci(lambda i: scores_from_sums(sums, i)[key], n_cases=T, ...)``.
    Returns {"rmse": (lo, hi), "mu": (lo, hi), "sigma": (lo, hi)}.
    """
    se, sr, cnt = _arrays(sums)
    c = resample_counts(se.size, n, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        rmse = np.sqrt((c @ se) / (c @ cnt))
        mu = 1.0 - np.sqrt((c @ se) / (c @ sr))
        ok = (cnt > 0) & (sr > 0)
        s_t = np.where(ok, 1.0 - np.sqrt(se / np.where(ok, sr, 1.0)), 0.0)
        s_t = np.where(ok, s_t - (s_t[ok].mean() if ok.any() else 0.0), 0.0)
        w = c * ok
        nw = w.sum(axis=1)
        m1 = (w @ s_t) / nw
        m2 = (w @ s_t**2) / nw
        sigma = np.sqrt(np.maximum(m2 - m1**2, 0.0))
    return {
        "rmse": percentile_interval(rmse, alpha),
        "mu": percentile_interval(mu, alpha),
        "sigma": percentile_interval(sigma, alpha),
    }
