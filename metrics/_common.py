"""Private helpers shared by the metric modules: alignment, dims, reductions, grid steps."""

from __future__ import annotations

import math

import dask
import dask.array as dsa
import numpy as np
import xarray as xr


def as_dims(dims) -> tuple:
    """None -> (), "a" -> ("a",), sequence -> tuple."""
    if dims is None:
        return ()
    if isinstance(dims, str):
        return (dims,)
    return tuple(dims)


def align(*arrays: xr.DataArray) -> tuple:
    """Exact alignment of DataArrays on shared coordinates; a clear ValueError on mismatch.

    Exact (not inner) so that slightly different coordinates never silently drop points.
    """
    try:
        return xr.align(*arrays, join="exact", copy=False)
    except ValueError as exc:
        raise ValueError(f"inputs have different coordinates: {exc}") from None


def require_dims(da: xr.DataArray, dims, what: str = "input") -> None:
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise ValueError(f"{what} lacks dimension(s) {missing}; it has {list(da.dims)}")


def is_dask(a) -> bool:
    return dask.is_dask_collection(a)


def to_float(x) -> float:
    """0-d DataArray / array / scalar -> Python float (computes dask)."""
    if isinstance(x, xr.DataArray):
        x = x.data
    if is_dask(x):
        x = x.compute()
    return float(np.asarray(x))


def mean_over(x: xr.DataArray, dim=None):
    """NaN-skipping mean over `dim` (None: all dims); a float when nothing is left, else a computed DataArray."""
    out = x.mean(dim=None if dim is None else as_dims(dim), skipna=True)
    if out.ndim == 0:
        return to_float(out)
    return out.compute()


def coord_step(da: xr.DataArray, dim: str) -> float:
    """Grid step along `dim` in coordinate units (days for datetime64/timedelta64); 1 without a coordinate.

    Raises ValueError for an unevenly spaced coordinate (Fourier transforms need a regular grid).
    """
    if dim not in da.coords or da.sizes[dim] < 2:
        return 1.0
    c = np.asarray(da[dim].values)
    if np.issubdtype(c.dtype, np.datetime64) or np.issubdtype(c.dtype, np.timedelta64):
        d = np.diff(c) / np.timedelta64(1, "D")
    else:
        d = np.diff(c.astype(float))
    d = np.abs(d)
    step = float(d[0])
    if step == 0 or not np.allclose(d, step, rtol=1e-3):
        raise ValueError(f"coordinate {dim!r} is not evenly spaced")
    return step


def map_rows(a, fn, tail: tuple):
    """Apply fn: (rows, ...) -> (rows, *tail) to a numpy or dask array, blockwise along axis 0 for dask."""
    if is_dask(a):
        a = a.rechunk({i: -1 for i in range(1, a.ndim)})
        out_ndim = 1 + len(tail)
        kw = {}
        if out_ndim < a.ndim:
            kw["drop_axis"] = list(range(out_ndim, a.ndim))
        elif out_ndim > a.ndim:
            kw["new_axis"] = list(range(a.ndim, out_ndim))
        return dsa.map_blocks(fn, a, chunks=(a.chunks[0], *[(n,) for n in tail]), dtype=np.float64, **kw)
    return fn(np.asarray(a))


def rows_view(da: xr.DataArray, lead: tuple, core: tuple):
    """Data of `da` transposed to (*lead, *core) and reshaped to (rows, *core); also the lead shape."""
    da = da.transpose(*lead, *core)
    lead_shape = tuple(da.sizes[d] for d in lead)
    rows = math.prod(lead_shape)
    data = da.data
    if data.ndim != 1 + len(core) or len(lead) != 1:
        data = data.reshape((rows, *[da.sizes[d] for d in core]))
    return data, lead_shape
