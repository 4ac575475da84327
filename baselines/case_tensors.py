"""A gridded DA case as batched tensors, and back.

The gridded challenges (``l96-da``, ``l96-fc48``, ``l96-cycle``) hand a method
one Dataset per call with

- ``background`` (*batch dims, [member], *state dims)
- ``y`` (*batch dims, *state dims): observed values, NaN where not observed
- ``obs_mask`` (*batch dims, *state dims): True where observed
- ``sigma``: observation-error standard deviation (scalar or broadcastable)

so that the observation operator H is a selection on the grid and R is
diagonal. ``read_case`` flattens every batch dim (test cases, trajectories,
tuning trials) into one leading dim B and the state into a vector of length
n; the returned analysis is shaped back with ``GriddedCase.dataset``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from challenges.cycling import values_as

MEMBER = "member"


@dataclass
class GriddedCase:
    """Tensors of one case: ``xb`` (B, [M], n), ``y`` (B, n) zero-filled, ``rinv`` (B, n) = mask / sigma²."""

    xb: torch.Tensor
    y: torch.Tensor
    rinv: torch.Tensor
    batch_dims: tuple
    batch_shape: tuple
    state_dims: tuple
    state_shape: tuple
    coords: dict
    ensemble: bool

    @property
    def B(self) -> int:
        return self.xb.shape[0]

    def param(self, value) -> torch.Tensor:
        """A per-experiment parameter as a (B,) tensor: a number, or a DataArray over some batch dims
        (e.g. a ``trial`` dim when a method tunes several values at once)."""
        if isinstance(value, xr.DataArray):
            template = xr.DataArray(np.zeros(self.batch_shape), dims=self.batch_dims)
            v = value.broadcast_like(template).transpose(*self.batch_dims).values
            return torch.as_tensor(np.asarray(v, dtype=np.float64).ravel(), device=self.xb.device)
        return torch.full((self.B,), float(value), dtype=self.xb.dtype, device=self.xb.device)

    def dataset(self, x: torch.Tensor, name: str = "x") -> xr.Dataset:
        """``x`` (B, [M], n) as a Dataset with the case's batch, member and state dims."""
        members = x.ndim == 3
        arr = x.detach().cpu().numpy().reshape(*self.batch_shape, *x.shape[1:-1], *self.state_shape)
        dims = (*self.batch_dims, MEMBER, *self.state_dims) if members else (*self.batch_dims, *self.state_dims)
        return xr.Dataset({name: (dims, arr)}, coords={d: c for d, c in self.coords.items() if d in dims})


def read_case(case: xr.Dataset, state_dims: tuple, device="cpu", dtype=torch.float64) -> GriddedCase:
    """Flatten a gridded case (see module doc) into tensors on ``device``."""
    bg = case["background"]
    ensemble = MEMBER in bg.dims
    batch_dims = tuple(d for d in bg.dims if d not in state_dims and d != MEMBER)
    bg = bg.transpose(*batch_dims, *((MEMBER,) if ensemble else ()), *state_dims)
    batch_shape = tuple(bg.sizes[d] for d in batch_dims)
    state_shape = tuple(bg.sizes[d] for d in state_dims)
    B, n = math.prod(batch_shape), math.prod(state_shape)

    dims = (*batch_dims, *state_dims)

    def flat(da):
        v = values_as(da, dims, bg.sizes).reshape(B, n)
        return torch.as_tensor(np.array(v, dtype=np.float64), dtype=dtype, device=device)

    xb = torch.as_tensor(np.array(bg.values, dtype=np.float64), dtype=dtype, device=device)
    xb = xb.reshape(B, -1, n) if ensemble else xb.reshape(B, n)
    mask = flat(case["obs_mask"]) > 0
    y = torch.where(mask, flat(case["y"]).nan_to_num(0.0), 0.0)
    sigma = flat(case["sigma"])
    rinv = torch.where(mask, 1.0 / sigma**2, 0.0)
    coords = {d: bg[d] for d in (*batch_dims, *state_dims) if d in bg.coords}
    return GriddedCase(xb, y, rinv, batch_dims, batch_shape, tuple(state_dims), state_shape, coords, ensemble)
