"""A QG DA case (``qg-da`` family, ``qg-fc48``, ``qg-cycle``) as batched tensors, and back.

The QG challenges hand a method ``background`` (*batch dims, [member], lev, y, x)
and the SSH observations ``obs_x``, ``obs_y`` (km), ``obs_value``, ``obs_sigma``
(m) with dims (*batch dims, obs) (``qg-da``: batch = time; ``qg-cycle``:
batch = traj, plus ``trial`` when a method tunes several parameters at once).
``read_qg_case`` flattens the batch dims into one leading dim B; the analysis
goes back with ``QGCase.dataset``. ``QGCase.interpolator()`` evaluates LR grid
fields exactly at the case's positions (``challenges.qg_common.Interpolator``)
and ``QGCase.ssh_obs(q)`` is the observation operator on states
(B, [M], 2, ny, nx): the SSH the observations see at the resolved scales (the
LR SSH with the coarse-graining filter undone, ``qg_common.obs_transfer``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from challenges import qg_common as Q
from challenges.cycling import values_as

MEMBER = "member"
STATE = ("lev", "y", "x")


@dataclass
class QGCase:
    xb: torch.Tensor          # (B, [M], 2, ny, nx)
    ox: torch.Tensor          # (B, P) km
    oy: torch.Tensor
    y: torch.Tensor           # (B, P) m
    sigma: torch.Tensor       # (B, P) m
    batch_dims: tuple
    batch_shape: tuple
    coords: dict
    ensemble: bool
    L: float
    size: str

    @property
    def B(self) -> int:
        return self.xb.shape[0]

    @property
    def nx(self) -> int:
        return self.xb.shape[-1]

    def interpolator(self) -> Q.Interpolator:
        if not hasattr(self, "_H"):
            self._H = Q.Interpolator(self.ox, self.oy, self.nx, self.L, device=self.xb.device)
        return self._H

    def ssh_obs(self, q: torch.Tensor, defilter: bool = True) -> torch.Tensor:
        """SSH at the observation positions of states q (B, [M], 2, ny, nx) -> (B, [M], P).

        ``defilter``: the observed (HR) SSH at the resolved scales, i.e. with the coarse-graining
        filter undone (``qg_common.obs_transfer``); else the SSH of the LR state itself."""
        H = self.interpolator()
        t = Q.obs_transfer(Q.lr_model(self.size, str(q.device)), defilter).to(q.device)
        eta = torch.fft.irfft2((t * torch.fft.rfft2(q)).sum(-3), s=q.shape[-2:])
        if eta.ndim == 4:
            return torch.einsum("bpj,bmji,bpi->bmp", H.Dy, eta, H.Dx)
        return H.forward(eta)

    def param(self, value) -> torch.Tensor:
        """A per-experiment parameter (number, or DataArray over some batch dims such as ``trial``) as (B,)."""
        if isinstance(value, xr.DataArray):
            template = xr.DataArray(np.zeros(self.batch_shape), dims=self.batch_dims)
            v = value.broadcast_like(template).transpose(*self.batch_dims).values
            return torch.as_tensor(np.asarray(v, dtype=np.float64).ravel(), device=self.xb.device)
        return torch.full((self.B,), float(value), dtype=torch.float64, device=self.xb.device)

    def dataset(self, q: torch.Tensor, name: str = "q") -> xr.Dataset:
        members = q.ndim == 5
        arr = q.detach().cpu().numpy().reshape(*self.batch_shape, *q.shape[1:])
        dims = (*self.batch_dims, MEMBER, *STATE) if members else (*self.batch_dims, *STATE)
        return xr.Dataset({name: (dims, arr)}, coords={d: c for d, c in self.coords.items() if d in dims})


def read_qg_case(case: xr.Dataset, device="cpu") -> QGCase:
    bg = case["background"]
    ensemble = MEMBER in bg.dims
    batch_dims = tuple(d for d in bg.dims if d not in STATE and d != MEMBER)
    bg = bg.transpose(*batch_dims, *((MEMBER,) if ensemble else ()), *STATE)
    batch_shape = tuple(bg.sizes[d] for d in batch_dims)
    B = math.prod(batch_shape)
    P = case.sizes["obs"]
    sizes = {**{d: bg.sizes[d] for d in batch_dims}, "obs": P}

    def flat(name):
        v = values_as(case[name], (*batch_dims, "obs"), sizes).reshape(B, P)
        return torch.as_tensor(np.array(v, dtype=np.float64), device=device)

    xb = torch.as_tensor(np.array(bg.values, dtype=np.float64), device=device)
    xb = xb.reshape(B, *xb.shape[len(batch_dims):])
    coords = {d: bg[d] for d in (*batch_dims, *STATE) if d in bg.coords}
    L = float(case.attrs.get("L_km", 1000.0))
    size = case.attrs.get("size")
    if size is None:
        raise ValueError("a QG case must carry its dataset size in attrs['size']")
    return QGCase(xb, flat("obs_x"), flat("obs_y"), flat("obs_value"), flat("obs_sigma"), batch_dims, batch_shape,
                  coords, ensemble, L, size)
