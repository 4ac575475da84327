"""``interp``: interpolated observations, the mapping floor (``qg-map`` family).

For each daily map, the observations within +-w days are averaged per LR
cell (``challenges.gridding.bin_to_grid``), and the empty cells are filled by
piecewise-linear interpolation (Delaunay, ``scipy.interpolate.griddata``)
between the occupied cell centres, on the periodic domain (the occupied
cells are replicated in the 8 neighbouring copies of the domain before the
triangulation), with the nearest occupied cell where the triangulation does
not reach. The climatological mean (constant in space by homogeneity; 0 up
to round-off) is used where a map has no observation at all. The half-window
w (days) is tuned on the validation split among 0, 1, 2, 3, 5, 8 by µ(RMSE).
No covariance model, no noise filtering: the floor that OI must beat.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from challenges import gridding
from challenges import qg_common as Q
from challenges.qg_map import MAP_CHALLENGES

from .base import Method


def fill_periodic(mean: np.ndarray, xg: np.ndarray, L: float, fallback: float = 0.0) -> np.ndarray:
    """Fill NaN cells of a periodic (ny, nx) map by linear interpolation between the finite ones."""
    from scipy.interpolate import griddata

    ok = np.isfinite(mean)
    if ok.all():
        return mean
    if ok.sum() < 3:
        out = np.where(ok, mean, fallback if not ok.any() else np.nanmean(mean))
        return out
    X, Y = np.meshgrid(xg, xg)
    px, py, pv = X[ok], Y[ok], mean[ok]
    shifts = [(a, b) for a in (-L, 0.0, L) for b in (-L, 0.0, L)]
    tx = np.concatenate([px + a for a, b in shifts])
    ty = np.concatenate([py + b for a, b in shifts])
    tv = np.tile(pv, len(shifts))
    out = mean.copy()
    miss = ~ok
    lin = griddata((tx, ty), tv, (X[miss], Y[miss]), method="linear")
    bad = ~np.isfinite(lin)
    if bad.any():
        lin[bad] = griddata((tx, ty), tv, (X[miss][bad], Y[miss][bad]), method="nearest")
    out[miss] = lin
    return out


class Interp(Method):
    name = "interp"
    summary = "observations binned to LR cells within +-w days, gaps filled by periodic linear interpolation"
    applies_to = MAP_CHALLENGES
    windows = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.window = 2.0
        self.tuning = {}

    def fit(self, train, val) -> None:
        self.L = Q.domain_km(self.size)
        self.xg = Q.grid_km(self.size)
        self.mean = float(train["ssh"].mean().values)
        ch = self.challenge
        cases = list(ch.cases(self.size, split="val"))
        truth = ch.truth(self.size, split="val")["ssh"]
        scores = []
        for w in self.windows:
            num = den = 0.0
            for c in cases:
                times = c["time"].values[::3]
                est = self._maps(c, times, w)
                tr = truth.sel(traj=int(c["traj"]), time=times).values
                num += float(((est - tr) ** 2).sum())
                den += float((tr ** 2).sum())
            scores.append(1.0 - np.sqrt(num / den))
        self.window = float(self.windows[int(np.argmax(scores))])
        self.tuning = {"half_window_days": list(self.windows), "val_mu": scores}

    def _maps(self, case: xr.Dataset, times: np.ndarray, w: float) -> np.ndarray:
        nx = len(self.xg)
        mean, _ = gridding.bin_to_grid(case["obs_time"].values, case["obs_x"].values, case["obs_y"].values,
                                       case["obs_value"].values, times, nx, L=self.L,
                                       half_window=None if w == 0 else w)
        return np.stack([fill_periodic(m, self.xg, self.L, self.mean) for m in mean])

    def predict(self, case: xr.Dataset) -> xr.Dataset:
        est = self._maps(case, case["time"].values, self.window)
        return xr.Dataset({"ssh": (("time", "y", "x"), est)},
                          coords={"time": case["time"], "y": case["y"], "x": case["x"]})

    def describe(self) -> dict:
        return {"half_window_days": self.window, "tuning (val)": self.tuning}
