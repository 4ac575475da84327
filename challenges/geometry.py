"""The grid a challenge's state lives on: a periodic ring (Lorenz-96) or a doubly periodic 2-D grid (QG).

Methods never ask which world they run in; they ask the geometry. A
``Geometry`` gives the state's dims and shape, the cell-centre coordinates of
the grid, periodic distances between points, and its spectral layout, which is
what distinguishes "small dense state" methods (a dense covariance) from
"periodic grid" methods (a homogeneous, isotropic spectral covariance). See
docs/methods.md.

``kind``: ``"ring"`` (1-D periodic, coordinates in grid units) or
``"periodic2d"`` (doubly periodic, coordinates in km). ``levels``: the number
of stacked layers of the state (1 for L96; 2 for two-layer QG, dim ``lev``).
Both worlds are statistically homogeneous (``homogeneous``): their
climatological mean is the same at every grid point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RING = "ring"
PERIODIC2D = "periodic2d"


@dataclass(frozen=True)
class Geometry:
    kind: str
    #: grid shape: (N,) for a ring, (ny, nx) for a 2-D grid
    shape: tuple[int, ...]
    #: periodic length of each grid axis, in ``units``
    length: tuple[float, ...]
    #: dim names of the grid axes: ("i",) or ("y", "x")
    axes: tuple[str, ...]
    units: str
    #: name and size of the level dim of the state (None: single-level state)
    level_dim: str | None = None
    n_levels: int = 1
    homogeneous: bool = True

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def state_dims(self) -> tuple[str, ...]:
        return ((self.level_dim,) if self.level_dim else ()) + self.axes

    @property
    def state_shape(self) -> tuple[int, ...]:
        return ((self.n_levels,) if self.level_dim else ()) + self.shape

    @property
    def n_points(self) -> int:
        return math.prod(self.shape)

    @property
    def n_state(self) -> int:
        return self.n_points * self.n_levels

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(L / n for L, n in zip(self.length, self.shape))

    def axis_coords(self, axis: int) -> np.ndarray:
        """Cell-centre coordinates of one axis: (i + 1/2) dx for 2-D grids (pyqg's grid), i for a ring."""
        n, L = self.shape[axis], self.length[axis]
        if self.kind == RING:
            return np.arange(n, dtype=np.float64)
        return (np.arange(n) + 0.5) * (L / n)

    def positions(self) -> np.ndarray:
        """Coordinates of every grid point, (n_points, ndim), C order; columns in ``axes`` order."""
        grids = np.meshgrid(*[self.axis_coords(a) for a in range(self.ndim)], indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=-1)

    def wrap(self, d):
        """Minimum-image displacement(s) ``d`` (..., ndim) on the periodic domain (numpy or torch)."""
        L = np.asarray(self.length, dtype=np.float64)
        if hasattr(d, "new_tensor"):
            Lt = d.new_tensor(L)
            return (d + 0.5 * Lt).remainder(Lt) - 0.5 * Lt
        return np.mod(d + 0.5 * L, L) - 0.5 * L

    def distance(self, a, b):
        """Periodic Euclidean distances between points a (..., ndim) and b (..., ndim) (broadcast)."""
        d = self.wrap(a - b)
        return (d * d).sum(-1) ** 0.5

    def describe(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "length": list(self.length), "units": self.units,
                "levels": self.n_levels}
