"""Probabilistic scores of an ensemble against the truth: fair CRPS, spread/skill, rank histogram.

The ensemble has a ``member`` dim of size M; the truth has the same dims without it.
Points where the truth or any member is NaN are left out.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._common import as_dims, mean_over, require_dims


def _crps_fair(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Fair CRPS per point; ens (..., M), obs (...).

    CRPS_fair = (1/M) Σ_i |x_i - y| - 1/(2 M (M-1)) Σ_i Σ_j |x_i - x_j|
    (Ferro 2014; Zamo & Naveau 2018), the unbiased estimator of the CRPS of the distribution
    the members are drawn from. Σ_ij |x_i - x_j| = 2 Σ_i (2i - M - 1) x_(i) on sorted members.
    With M = 1 the pair term is 0 (the absolute error).
    """
    ens = np.asarray(ens, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    m = ens.shape[-1]
    skill = np.abs(ens - obs[..., None]).mean(axis=-1)
    if m < 2:
        return skill
    w = 2.0 * np.arange(1, m + 1) - m - 1
    pairs = 2.0 * (np.sort(ens, axis=-1) * w).sum(axis=-1)
    return skill - pairs / (2.0 * m * (m - 1))


def crps(ens: xr.DataArray, obs: xr.DataArray, member: str = "member", dim=None):
    """Mean fair CRPS (field units; lower is better) over ``dim`` (None: all dims -> float).

    NaN points are skipped in the mean. See :func:`_crps_fair` for the estimator.
    """
    require_dims(ens, [member], "ensemble")
    ens, obs = xr.broadcast(ens, obs, exclude=[member])
    if ens.chunks is not None:
        ens = ens.chunk({member: -1})
    pointwise = xr.apply_ufunc(
        _crps_fair,
        ens,
        obs,
        input_core_dims=[[member], []],
        dask="parallelized",
        output_dtypes=[np.float64],
    )
    return mean_over(pointwise, dim)


def spread_skill(ens: xr.DataArray, obs: xr.DataArray, member: str = "member", dim=None) -> dict:
    """Spread/skill ratio with the finite-ensemble correction (Fortin et al. 2014).

    spread = sqrt(mean over points of the member variance, ddof = 1);
    skill  = RMSE of the ensemble mean against the truth;
    ratio  = sqrt((M+1)/M) · spread / skill, which is 1 in expectation for a calibrated
    ensemble (truth exchangeable with the members: E[(mean - y)²] = (M+1)/M · σ²).
    Over ``dim`` (None: all points -> floats). Returns {"spread", "skill", "ratio"}.
    """
    require_dims(ens, [member], "ensemble")
    m = ens.sizes[member]
    ens = ens.astype(np.float64)
    mean = ens.mean(member, skipna=False)
    var = ens.var(member, ddof=1, skipna=False) if m > 1 else xr.full_like(mean, np.nan)
    err2 = (mean - obs) ** 2
    valid = np.isfinite(err2) & np.isfinite(var)
    spread = np.sqrt(mean_over(var.where(valid), dim))
    skill = np.sqrt(mean_over(err2.where(valid), dim))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sqrt((m + 1) / m) * spread / skill
    if isinstance(ratio, xr.DataArray):
        return {"spread": spread, "skill": skill, "ratio": ratio}
    return {"spread": float(spread), "skill": float(skill), "ratio": float(ratio)}


def rank_histogram(ens: xr.DataArray, obs: xr.DataArray, member: str = "member", seed: int = 0) -> xr.DataArray:
    """Counts of the rank of the truth among the M members (ranks 0..M, dim "rank").

    Rank = number of members below the truth; ties are broken uniformly at random (seeded,
    so results are deterministic). A calibrated ensemble gives a flat histogram.
    """
    require_dims(ens, [member], "ensemble")
    m = ens.sizes[member]
    below = (ens < obs).sum(member)
    equal = (ens == obs).sum(member)
    valid = np.isfinite(obs) & np.isfinite(ens).all(member)
    below, equal, valid = (np.asarray(v.values).ravel() for v in xr.broadcast(below, equal, valid))
    rng = np.random.default_rng(seed)
    ranks = below + np.floor(rng.random(below.size) * (equal + 1)).astype(int)
    counts = np.bincount(ranks[valid], minlength=m + 1)
    return xr.DataArray(counts, dims=("rank",), coords={"rank": np.arange(m + 1)}, name="rank_histogram")


def case_errors(pred: xr.DataArray, truth: xr.DataArray, state_dims, member: str = "member") -> dict:
    """Per-case error statistics averaged over the state dims, for deterministic or ensemble predictions.

    ``se``: squared error of the (ensemble) mean; ``crps``: fair CRPS (the absolute error for a
    single member); ``var``: member variance (ddof 1; only with more than one member);
    ``members``: M (1 without a member dim). Arrays over the remaining (case) dims.
    """
    state_dims = list(as_dims(state_dims))
    ens = pred if member in pred.dims else pred.expand_dims({member: 1})
    m = ens.sizes[member]
    out = {"se": ((ens.mean(member) - truth) ** 2).mean(state_dims),
           "crps": crps(ens, truth, member=member, dim=state_dims), "members": m}
    if m > 1:
        out["var"] = ens.var(member, ddof=1).mean(state_dims)
    return out
