"""``interp``: interpolated observations, the floor of mapping and of one-step DA (DiffDA's second reference).

For each map, the observations within +-w days are averaged per grid cell
(``challenges.gridding.bin_to_grid``), and the empty cells are filled by
piecewise-linear interpolation (Delaunay, ``scipy.interpolate.griddata``)
between the occupied cell centres on the periodic domain (the occupied cells
are replicated in the 8 neighbouring copies of the domain before the
triangulation), with the nearest occupied cell where the triangulation does
not reach; the climatological mean (constant in space by homogeneity) where a
map has no observation at all. No covariance model, no noise filtering.

* mapping: the half-window w (days) is tuned on the val split among 0 (the
  map's own day), 1, 2, 3, 5, 8;
* one-step DA: the observations of the analysis time only (w = 0), and the
  map, an estimate of the observed field, is turned into a state by the
  climatological regression of the state on that field (per isotropic
  wavenumber, from the training states' spectral covariance:
  ``SpectralCovariance.field_regression``). The background is not used: this
  is the "interpolated observations" row of DiffDA's tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from .base import Config, Method, Supports
from .core import tuning

torch = lazy.load("torch")


def fill_periodic(mean: np.ndarray, xg: np.ndarray, L: float, fallback: float = 0.0) -> np.ndarray:
    """Fill NaN cells of a periodic (ny, nx) map by linear interpolation between the finite ones.

    ``mean`` (ny, nx, K): K maps with the same NaN cells, filled with one triangulation."""
    from scipy.interpolate import griddata

    ok = np.isfinite(mean) if mean.ndim == 2 else np.isfinite(mean).all(-1)
    if ok.all():
        return mean
    if ok.sum() < 3:
        okk = ok if mean.ndim == 2 else ok[..., None]
        return np.where(okk, mean, fallback if not ok.any() else np.nanmean(mean[ok], 0))
    X, Y = np.meshgrid(xg, xg)
    px, py, pv = X[ok], Y[ok], mean[ok]
    shifts = [(a, b) for a in (-L, 0.0, L) for b in (-L, 0.0, L)]
    tx = np.concatenate([px + a for a, b in shifts])
    ty = np.concatenate([py + b for a, b in shifts])
    tv = np.concatenate([pv] * len(shifts))
    out = mean.copy()
    miss = ~ok
    lin = griddata((tx, ty), tv, (X[miss], Y[miss]), method="linear")
    bad = ~np.isfinite(lin)
    if bad.any():
        lin[bad] = griddata((tx, ty), tv, (X[miss][bad], Y[miss][bad]), method="nearest")
    out[miss] = lin
    return out


@dataclass
class InterpConfig(Config):
    windows: tuple = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)


class Interp(Method):
    name = "interp"
    summary = "observations binned to grid cells (within +-w days), gaps filled by periodic linear interpolation"
    supports = Supports(families=("mapping", "analysis"), geometries=("periodic2d",), observes=("points",))
    Config = InterpConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.window = 0.0

    def fit(self, train, val) -> None:
        g = train.geometry
        self.L, self.xg = g.length[0], g.axis_coords(0)
        if train.family == "mapping":
            self.mean = float(train.states().mean())
            self.tuning = tuning.coordinate(lambda p: val.evaluate(lambda prob: self._predict_map(prob, p["window"])),
                                            {"window": 2.0}, {"window": self.config.windows}, label="interp",
                                            progress=self.progress)
            self.window = self.tuning["best"]["window"]
            return
        from .core.spectral_covariance import SpectralCovariance

        states = train.states()
        fmap = train.field_map
        self.state_mean = states.mean(axis=(0, 2, 3), keepdims=True)[0]
        cov = SpectralCovariance.from_samples(states - states.mean(0, keepdims=True))
        self.regression = cov.field_regression(fmap.transfer)
        self.mean = float(fmap(torch.as_tensor(self.state_mean[None])).mean())

    def _maps(self, t, x, y, v, times, w) -> np.ndarray:
        from challenges import gridding

        nx = len(self.xg)
        # w = 0: the observations of the map's own day (the maps may be a subset of days)
        mean, _ = gridding.bin_to_grid(t, x, y, v, times, nx, L=self.L, half_window=max(w, 0.49))
        return np.stack([fill_periodic(m, self.xg, self.L, self.mean) for m in mean])

    def _predict_map(self, problem, w):
        o = problem.obs
        pos = o.positions[0].cpu().numpy()
        est = self._maps(o.times[0].cpu().numpy(), pos[:, 1], pos[:, 0], o.values[0].cpu().numpy(), problem.times, w)
        return problem.result(est)

    def predict(self, problem):
        if not hasattr(problem, "background"):
            return self._predict_map(problem, self.window)
        o = problem.obs
        maps = []
        for b in range(problem.B):
            keep = o.valid[b].cpu().numpy()
            pos = o.positions[b].cpu().numpy()[keep]
            maps.append(self._maps(np.zeros(len(pos)), pos[:, 1], pos[:, 0], o.values[b].cpu().numpy()[keep],
                                   np.zeros(1), 0.0)[0])
        f = torch.as_tensor(np.stack(maps)) - self.mean
        g = problem.geometry
        dq = torch.fft.irfft2(self.regression * torch.fft.rfft2(f)[:, None], s=g.shape)
        return problem.result(dq + torch.as_tensor(self.state_mean))

    def describe(self) -> dict:
        return {"half_window_days": self.window}
