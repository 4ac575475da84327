"""Norms of gridded errors for the closures' losses: the mean square, or an H^-1 norm that weights large scales.

``"h-1"`` weights each Fourier mode of the error (orthonormal FFT over the grid
axes) by 1/|k|^2 (integer wavenumbers; 1 for the mean), scaled to mean 1 over
the grid's modes: a white error scores its mean square in either norm, and an
error at wavenumber |k| counts 1/|k|^2 as much as one at |k| = 1. For QG PV it
is the energy-like norm (the streamfunction's scale is PV's over |k|^2), for a
forcing it weights the scales that change the resolved energy most; it reads
nothing but the grid's shape, on a ring or a doubly periodic grid alike.
"""
from __future__ import annotations

from functools import lru_cache

import torch

NORMS = ("l2", "h-1")


def h_minus1_weights(shape, device=None) -> torch.Tensor:
    """The 1/|k|^2 weights (module doc) of the Fourier modes of a periodic grid of ``shape``, mean 1 (made once
    per grid and device: the losses ask for them at every snapshot of every batch)."""
    return _weights(tuple(int(n) for n in shape), str(torch.device(device)) if device is not None else "cpu")


@lru_cache(maxsize=8)
def _weights(shape: tuple, device: str) -> torch.Tensor:
    k2 = torch.zeros(tuple(shape), dtype=torch.float64)
    for a, n in enumerate(shape):
        k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
        k2 = k2 + k.reshape([-1 if b == a else 1 for b in range(len(shape))]) ** 2
    w = 1.0 / k2.clamp(min=1.0)
    return (w / w.mean()).to(device=device, dtype=torch.float32)


def mean_square(err: torch.Tensor, norm: str, grid_ndim: int) -> torch.Tensor:
    """The mean of ``err`` (..., *grid) squared in ``norm`` (``NORMS``; the last ``grid_ndim`` axes are the grid)."""
    if norm == "l2":
        return torch.mean(err ** 2)
    if norm != "h-1":
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    dims = tuple(range(err.ndim - grid_ndim, err.ndim))
    modes = torch.fft.fftn(err, dim=dims, norm="ortho")
    return torch.mean(h_minus1_weights(err.shape[-grid_ndim:], err.device).to(modes.real.dtype) * modes.abs() ** 2)
