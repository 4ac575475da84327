"""Forecast scores per lead time: RMSE and anomaly correlation coefficient (ACC).

Both reduce over every dim except ``lead``. With ``over=None`` all those dims are pooled
into one statistic per lead; with ``over=dims`` the statistic is computed per case over
``over`` (e.g. space) and then averaged over the remaining dims (e.g. forecast cases).
Points where the forecast or the truth is NaN are left out.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._common import align, as_dims, require_dims


def _split(da: xr.DataArray, lead: str, over):
    require_dims(da, [lead], "forecast")
    rest = [d for d in da.dims if d != lead]
    over = rest if over is None else list(as_dims(over))
    cases = [d for d in rest if d not in over]
    return over, cases


def rmse_by_lead(pred: xr.DataArray, truth: xr.DataArray, lead: str = "lead", over=None) -> xr.DataArray:
    """RMSE per lead time (field units), dims (lead,); see module doc for ``over``."""
    pred, truth = align(pred, truth)
    over, cases = _split(pred, lead, over)
    se = (pred.astype(np.float64) - truth) ** 2
    out = np.sqrt(se.mean(over, skipna=True))
    if cases:
        out = out.mean(cases, skipna=True)
    return out.compute().rename("rmse")


def anomaly_correlation(pred: xr.DataArray, truth: xr.DataArray, clim, over, centered: bool = False) -> xr.DataArray:
    """ACC over the dims ``over`` (e.g. space) for every remaining index (e.g. case and lead).

    Anomalies are taken from the given climatology ``clim`` (anything broadcastable: a
    scalar, a mean state, a per-lead/per-position field): f' = pred - clim, a' = truth - clim,
    ACC = Σ f'a' / sqrt(Σ f'² Σ a'²) (uncentred, as commonly used for NWP); NaN where a
    forecast or the truth has no anomaly at all (ACC undefined). ``centered=True`` also
    removes the mean anomaly over ``over`` first (Pearson correlation of the anomalies).
    """
    pred, truth = align(pred, truth)
    over = list(as_dims(over))
    fa = pred.astype(np.float64) - clim
    ta = truth.astype(np.float64) - clim
    valid = np.isfinite(fa) & np.isfinite(ta)
    fa, ta = fa.where(valid), ta.where(valid)
    if centered:
        fa = fa - fa.mean(over, skipna=True)
        ta = ta - ta.mean(over, skipna=True)
    num = (fa * ta).sum(over, skipna=True)
    den = np.sqrt((fa**2).sum(over, skipna=True) * (ta**2).sum(over, skipna=True))
    return (num / den.where(den > 0)).compute().rename("acc")


def acc_by_lead(
    pred: xr.DataArray,
    truth: xr.DataArray,
    clim,
    lead: str = "lead",
    over=None,
    centered: bool = False,
) -> xr.DataArray:
    """Anomaly correlation coefficient per lead time, dims (lead,): :func:`anomaly_correlation`
    over ``over`` (None: every dim but ``lead``), then averaged over the remaining dims."""
    over, cases = _split(pred, lead, over)
    out = anomaly_correlation(pred, truth, clim, over, centered)
    if cases:
        out = out.mean(cases, skipna=True)
    return out.compute().rename("acc")
