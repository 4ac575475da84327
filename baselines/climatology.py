"""``climatology``: the training-split mean state, whatever the observations.

The floor every DA method must beat by far. On a 2-D grid of a statistically
homogeneous world (``Geometry.homogeneous``) the climatological mean is the
same at every grid point: the mean of the training states over samples and
grid points, per level (QG PV and SSH: 0 up to round-off); a pointwise mean of
a few training trajectories would only add sampling noise. On a ring (a small
state, Lorenz-96) it is the per-variable training mean, DAPPER's
``Climatology`` (about 2.35 everywhere; the literature rows use it).
``--param spatial_mean=true|false`` overrides the choice.
Its RMSE is the climatological RMS deviation (about 3.6 in ``l96-cycle``, where
DAPPER's ``Climatology`` row reads 3.6). In forecast challenges the same state
is the forecast at every lead; in mapping challenges it is the mean map.
"""
from __future__ import annotations

import lazy_loader as lazy
import numpy as np

from dataclasses import dataclass

from .base import Config, Method, Supports, held

torch = lazy.load("torch")
xr = lazy.load("xarray")


@dataclass
class ClimatologyConfig(Config):
    #: average over the grid points too; None: on 2-D grids of homogeneous worlds, not on rings
    spatial_mean: bool | None = None


class Climatology(Method):
    name = "climatology"
    summary = "training-split mean state (no observations used)"
    supports = Supports(families=("analysis", "cycling", "forecast", "mapping"))
    reference = "DAPPER Climatology; Sakov & Oke (2008)"
    Config = ClimatologyConfig

    def fit(self, train, val) -> None:
        states = train.states()
        g = train.geometry
        grid_axes = tuple(range(states.ndim - g.ndim, states.ndim))
        spatial = self.config.spatial_mean
        self.spatial = g.homogeneous and g.kind == "periodic2d" if spatial is None else spatial
        if self.spatial:
            mean = states.mean(axis=(0, *grid_axes), keepdims=True)[0]
            self.mean = np.broadcast_to(mean, states.shape[1:]).copy()
        else:
            self.mean = states.mean(0)

    def predict(self, problem):
        if hasattr(problem, "background"):
            shape = (problem.B, *problem.geometry.state_shape)
            return held(problem, problem.result(torch.as_tensor(np.broadcast_to(self.mean, shape).copy())))
        return problem.result(np.broadcast_to(self.mean, (len(problem.times), *self.mean.shape)).copy())

    def describe(self) -> dict:
        return {"mean_state_average": float(self.mean.mean()), "spatial_mean": self.spatial}
