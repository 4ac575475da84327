"""The base of the QG challenges and their DA problems.

A QG DA case (one-step, forecast, every cycle) as a Dataset holds
``background(*batch, [member], lev, y, x)`` (PV q, 1/s) and the SSH
observations ``obs_x``, ``obs_y`` (km), ``obs_value``, ``obs_sigma`` (m) with dims
(*batch, obs); attrs ``size`` and ``obs_sigma_repr`` (m). ``problem_from_dataset``
turns it into an ``AnalysisProblem`` whose H is the challenges' exact SSH
operator (``qg_obs.operator``).
"""
from __future__ import annotations

import math

import lazy_loader as lazy
import numpy as np

from . import qg_obs as O
from . import qg_world as W
from .base import Challenge, bounds

torch = lazy.load("torch")
xr = lazy.load("xarray")

STATE = ("lev", "y", "x")
MEMBER = "member"


class QGChallenge(Challenge):
    """Declarations and data access shared by the ``qg`` challenges."""

    world = "qg"
    geometry_kind = "periodic2d"
    observes = "points"
    #: the observation store the challenge reads (its observing scenario)
    scenario = "random"

    def fields(self, size: str, split: str = "test", root=None):
        """The LR fields store (q, psi, ssh, S) of a split."""
        return self.open(size, split, root=root)

    def sigma_repr(self, size: str, root=None) -> float:
        return O.sigma_repr(self, size, self.scenario, root)

    def display(self, ds, size: str):
        """SSH (m) of a state prediction (the primary scored variable), else the prediction's own variables."""
        if "q" not in ds:
            return ds[list(self.variables)]
        q = ds["q"]
        rest = [d for d in q.dims if d not in STATE]
        q = q.transpose(*rest, *STATE)
        ssh = W.ssh_of_q_np(size, q.values.astype(np.float64))
        coords = {d: q[d] for d in (*rest, "y", "x") if d in q.coords}
        return xr.Dataset({"ssh": ((*rest, "y", "x"), ssh, {"units": "m", "long_name": "sea-surface height"})},
                          coords=coords)

    def q_bounds(self, size: str, root=None) -> tuple[float, float]:
        return bounds(self.fields(size, "train", root)["q"].values)

    def ssh_bounds(self, size: str, root=None) -> tuple[float, float]:
        return bounds(self.fields(size, "train", root)["ssh"].values)


def problem_from_dataset(ds, device="cpu", cycle=None, attrs=None):
    """The ``AnalysisProblem`` of a QG DA case Dataset (see module doc)."""
    from .problems import AnalysisProblem

    size = ds.attrs.get("size")
    if size is None:
        raise ValueError("a QG case must carry its dataset size in attrs['size']")
    bg = ds["background"]
    batch_dims = tuple(d for d in bg.dims if d not in STATE and d != MEMBER)
    bg = bg.transpose(*batch_dims, *((MEMBER,) if MEMBER in bg.dims else ()), *STATE)
    batch_shape = tuple(bg.sizes[d] for d in batch_dims)
    B = math.prod(batch_shape) if batch_shape else 1
    P = ds.sizes["obs"]
    sizes = {**{d: bg.sizes[d] for d in batch_dims}, "obs": P}

    def flat(name):
        da = ds[name]
        v = np.asarray(da.transpose(*[d for d in (*batch_dims, "obs") if d in da.dims]).values, dtype=np.float64)
        shape = [sizes[d] if d in da.dims else 1 for d in (*batch_dims, "obs")]
        return np.broadcast_to(v.reshape(shape), [sizes[d] for d in (*batch_dims, "obs")]).reshape(B, P)

    xb = torch.as_tensor(np.array(bg.values, dtype=np.float64), device=device)
    xb = xb.reshape(B, *xb.shape[len(batch_dims):])
    ox, oy = flat("obs_x"), flat("obs_y")
    obs = O.observations(ox, oy, flat("obs_value"), flat("obs_sigma"), size, float(ds.attrs.get("obs_sigma_repr", 0.0)),
                         device=device)
    coords = {d: bg[d] for d in (*batch_dims, *STATE) if d in bg.coords}
    return AnalysisProblem(background=xb, obs=obs, H=O.operator(size, ox, oy, device), geometry=W.geometry(size),
                           var="q", batch_dims=batch_dims, batch_shape=batch_shape, coords=coords, cycle=cycle,
                           transforms={"streamfunction": W.Streamfunction(size, device)},
                           attrs={"size": size, **(attrs or {})})


def problem_from_arrays(size: str, background, ox, oy, value, sigma, sigma_r: float, batch_dims: tuple,
                        batch_shape: tuple, coords: dict, cycle=None, device="cpu"):
    """The ``AnalysisProblem`` of tensors/arrays (cycling: no Dataset per cycle). Obs arrays (B, P)."""
    from .problems import AnalysisProblem

    bg = background if torch.is_tensor(background) else torch.as_tensor(np.asarray(background, np.float64))
    obs = O.observations(ox, oy, value, sigma, size, sigma_r, device=device)
    return AnalysisProblem(background=bg.to(device, torch.float64), obs=obs, H=O.operator(size, ox, oy, device),
                           geometry=W.geometry(size), var="q", batch_dims=batch_dims, batch_shape=batch_shape,
                           coords=coords, cycle=cycle, transforms={"streamfunction": W.Streamfunction(size, device)},
                           attrs={"size": size})
