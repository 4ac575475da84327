"""Gridded views of sparse observations on a doubly periodic grid.

Observations are stored sparse (one row per observation: time, x, y, value,
sigma). Methods that want images (U-Nets, interpolation floors) or fewer,
less noisy data (OI) use these helpers:

* ``cell_index``: the grid cell (j, i) holding each position (cells are
  centred on ``(i + 1/2) dx``, pyqg's grid, so cell i spans
  ``[i dx, (i + 1) dx)``);
* ``bin_to_grid``: per-(time, cell) mean of the observations and their count
  (the mask is ``count > 0``), as arrays ``(n_times, ny, nx)``;
* ``superobs``: the same binning kept sparse: one "super-observation" per
  occupied (time, cell), at the mean position of its observations, with the
  mean value and the error std ``sigma / sqrt(n)`` of a mean of ``n``
  independent errors.

Positions are taken modulo the domain size, so callers may pass unwrapped
coordinates. Everything is numpy (float64) and vectorised.
"""
from __future__ import annotations

import numpy as np


def cell_index(x, y, nx: int, ny: int, L: float, W: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell indices (j along y, i along x) of positions on a [0, L) x [0, W) periodic grid."""
    W = L if W is None else W
    x = np.mod(np.asarray(x, dtype=np.float64), L)
    y = np.mod(np.asarray(y, dtype=np.float64), W)
    i = np.minimum((x * (nx / L)).astype(np.int64), nx - 1)
    j = np.minimum((y * (ny / W)).astype(np.int64), ny - 1)
    return j, i


def _time_index(t, times) -> np.ndarray:
    """Index of the nearest element of the sorted ``times`` for each observation time."""
    times = np.asarray(times, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if times.size == 1:
        return np.zeros(t.shape, dtype=np.int64)
    mid = 0.5 * (times[1:] + times[:-1])
    return np.searchsorted(mid, t, side="right")


def bin_to_grid(t, x, y, value, times, nx: int, ny: int | None = None, L: float = 1000.0,
                W: float | None = None, half_window: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean observed value and observation count per (time, y, x) cell.

    Each observation goes to the nearest of ``times``; with ``half_window`` it
    goes instead to every time within ``+- half_window`` of its own time
    (a running window, e.g. a few days for sparse altimetry). Returns
    ``(mean, count)``, both ``(len(times), ny, nx)``; ``mean`` is NaN where
    ``count == 0``.
    """
    ny = nx if ny is None else ny
    times = np.asarray(times, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    j, i = cell_index(x, y, nx, ny, L, W)
    nt = times.size
    if half_window is None:
        k = _time_index(t, times)
        rows = [(k, j, i, value)]
    else:
        rows = []
        lo = np.searchsorted(times, t - half_window - 1e-9, side="left")
        hi = np.searchsorted(times, t + half_window + 1e-9, side="right")
        width = int((hi - lo).max()) if t.size else 0
        for s in range(width):
            k = lo + s
            ok = k < hi
            rows.append((k[ok], j[ok], i[ok], value[ok]))
    flat_n = nt * ny * nx
    total = np.zeros(flat_n)
    count = np.zeros(flat_n)
    for k, jj, ii, v in rows:
        flat = (k * ny + jj) * nx + ii
        total += np.bincount(flat, weights=v, minlength=flat_n)
        count += np.bincount(flat, minlength=flat_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return mean.reshape(nt, ny, nx), count.reshape(nt, ny, nx)


def superobs(t, x, y, value, sigma, nx: int, ny: int | None = None, L: float = 1000.0,
             W: float | None = None) -> dict[str, np.ndarray]:
    """Average observations sharing a time and a grid cell into one super-observation.

    Returns dict(time, x, y, value, sigma, n) sorted by (time, cell): the mean
    position (computed relative to the cell's corner, so it never straddles the
    periodic seam), mean value, ``sqrt(mean(sigma^2) / n)`` and the count n.
    """
    ny = nx if ny is None else ny
    W = L if W is None else W
    t = np.asarray(t, dtype=np.float64)
    x = np.mod(np.asarray(x, dtype=np.float64), L)
    y = np.mod(np.asarray(y, dtype=np.float64), W)
    value = np.asarray(value, dtype=np.float64)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), t.shape)
    if t.size == 0:
        z = np.empty(0)
        return {"time": z, "x": z, "y": z, "value": z, "sigma": z, "n": np.empty(0, np.int64)}
    j, i = cell_index(x, y, nx, ny, L, W)
    ut, tk = np.unique(t, return_inverse=True)
    key = (tk.astype(np.int64) * ny + j) * nx + i
    uk, inv = np.unique(key, return_inverse=True)
    n = np.bincount(inv)
    dx, dy = L / nx, W / ny
    ci, cj = uk % nx, (uk // nx) % ny
    mx = np.bincount(inv, weights=x - i * dx) / n + ci * dx
    my = np.bincount(inv, weights=y - j * dy) / n + cj * dy
    return {
        "time": ut[uk // (nx * ny)],
        "x": mx,
        "y": my,
        "value": np.bincount(inv, weights=value) / n,
        "sigma": np.sqrt(np.bincount(inv, weights=sigma ** 2) / n / n),
        "n": n.astype(np.int64),
    }
