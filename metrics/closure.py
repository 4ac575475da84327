"""Closure (subgrid parameterisation) scores: offline R²/correlation, online distances, similarity.

Online scores follow Ross et al. (2023, JAMES): a distance d between a long-run statistic of
the coarse model with the closure and that of the filtered high-resolution truth —
Wasserstein-1 between marginal distributions, RMSE between isotropic spectra — is turned
into a similarity 1 - d(model, truth) / d(baseline, truth), where the baseline is the
coarse model without closure: 1 = as good as the truth, 0 = no better than the baseline,
< 0 = worse. NaN points are left out everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import scipy.stats
import xarray as xr

from ._common import align, as_dims, is_dask, to_float


def _finish(x: xr.DataArray):
    return to_float(x) if x.ndim == 0 else x.compute()


def r2(pred: xr.DataArray, truth: xr.DataArray, dim=None):
    """Coefficient of determination 1 - Σ(pred - truth)² / Σ(truth - mean(truth))² over ``dim``.

    ``dim=None``: all dims (a float); otherwise a DataArray over the remaining dims.
    """
    pred, truth = align(pred, truth)
    dims = None if dim is None else as_dims(dim)
    valid = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred.astype(np.float64).where(valid), truth.astype(np.float64).where(valid)
    sse = ((p - t) ** 2).sum(dims, skipna=True)
    sst = ((t - t.mean(dims, skipna=True)) ** 2).sum(dims, skipna=True)
    return _finish(1.0 - sse / sst.where(sst > 0))


def correlation(pred: xr.DataArray, truth: xr.DataArray, dim=None):
    """Pearson correlation over ``dim`` (None: all dims -> float)."""
    pred, truth = align(pred, truth)
    dims = None if dim is None else as_dims(dim)
    valid = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred.astype(np.float64).where(valid), truth.astype(np.float64).where(valid)
    pa = p - p.mean(dims, skipna=True)
    ta = t - t.mean(dims, skipna=True)
    den = np.sqrt((pa**2).sum(dims, skipna=True) * (ta**2).sum(dims, skipna=True))
    return _finish((pa * ta).sum(dims, skipna=True) / den.where(den > 0))


def _samples(a) -> np.ndarray:
    if isinstance(a, xr.DataArray):
        a = a.data
    if is_dask(a):
        a = a.compute()
    a = np.asarray(a, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def wasserstein1(a, b) -> float:
    """Wasserstein-1 distance between the marginal distributions of all finite values of a and b.

    Both are flattened (space, time, runs pooled), as Ross et al. (2023); field units.
    NaN if either has no finite value.
    """
    sa, sb = _samples(a), _samples(b)
    if sa.size == 0 or sb.size == 0:
        return float("nan")
    return float(scipy.stats.wasserstein_distance(sa, sb))


def spectral_rmse(spec_a: xr.DataArray, spec_b: xr.DataArray, kmax: float | None = None, dim: str = "wavenumber") -> float:
    """RMSE between two isotropic spectra over their common wavenumbers (below ``kmax`` if given).

    The spectra must share the wavenumber grid over their common leading part (e.g. an LR
    run and the filtered HR truth on the same LR grid, or HR/LR grids with the same domain
    size); other dims are averaged first. Ross et al. (2023) use kmax = 2/3 of the Nyquist
    wavenumber.
    """
    a = spec_a.mean([d for d in spec_a.dims if d != dim]) if spec_a.ndim > 1 else spec_a
    b = spec_b.mean([d for d in spec_b.dims if d != dim]) if spec_b.ndim > 1 else spec_b
    n = min(a.sizes[dim], b.sizes[dim])
    a, b = a.isel({dim: slice(0, n)}), b.isel({dim: slice(0, n)})
    ka = np.asarray(a[dim].values, dtype=float) if dim in a.coords else np.arange(n, dtype=float)
    kb = np.asarray(b[dim].values, dtype=float) if dim in b.coords else np.arange(n, dtype=float)
    if not np.allclose(ka, kb, rtol=1e-6):
        raise ValueError("spectra are on different wavenumber grids")
    keep = np.ones(n, bool) if kmax is None else ka < kmax
    d = np.asarray(a.values, dtype=float)[keep] - np.asarray(b.values, dtype=float)[keep]
    d = d[np.isfinite(d)]
    return float(np.sqrt(np.mean(d**2))) if d.size else float("nan")


def _sim(d_model: float, d_base: float) -> float:
    d_model, d_base = float(d_model), float(d_base)
    if not np.isfinite(d_model) or not np.isfinite(d_base) or d_base == 0:
        return float("nan")
    return 1.0 - d_model / d_base


def similarity(model, baseline, truth=None, distance: Callable | Mapping | None = None):
    """Ross et al. (2023) similarity 1 - d(model, truth) / d(baseline, truth).

    Two ways to call it:
      * ``truth=None``: ``model`` and ``baseline`` are the distances themselves (floats, or
        mappings name -> float);
      * otherwise ``model``, ``baseline``, ``truth`` are the statistics (DataArrays of
        samples or spectra, or mappings name -> DataArray) and ``distance`` (a callable, or a
        mapping name -> callable; default :func:`wasserstein1`) gives the distances.
    A single pair gives a float; mappings give {"per_metric": {name: sim}, "mean": float,
    "min": float} (NaN-skipping summaries). NaN where d(baseline, truth) = 0.
    """
    def dist_for(name):
        if distance is None:
            return wasserstein1
        return distance[name] if isinstance(distance, Mapping) else distance

    if isinstance(model, Mapping):
        names = list(model)
        if truth is None:
            sims = {k: _sim(model[k], baseline[k]) for k in names}
        else:
            sims = {
                k: _sim(dist_for(k)(model[k], truth[k]), dist_for(k)(baseline[k], truth[k])) for k in names
            }
        vals = np.array([v for v in sims.values() if np.isfinite(v)])
        return {
            "per_metric": sims,
            "mean": float(vals.mean()) if vals.size else float("nan"),
            "min": float(vals.min()) if vals.size else float("nan"),
        }
    if truth is None:
        return _sim(model, baseline)
    f = dist_for(None)
    return _sim(f(model, truth), f(baseline, truth))
