"""Coarse-graining of high-resolution (HR) QG fields to the low-resolution (LR) grid, and the subgrid forcing.

``coarsen`` is Ross et al. (2023)'s "Operator 2": spectral truncation of the HR
field to the LR wavenumbers followed by the Gaussian filter
exp(-|k|^2 (2 dx_LR)^2 / 24) (per direction: exp(-((k dx_LR)^2 + (l dy_LR)^2) / 6)).
The operator is linear, diagonal in wavenumber, and the same on every layer.

Two deliberate choices (both differ from pyqg's ``SpectralCoarsener``):

* Grid: the result holds the values of the band-limited field at the LR cell
  centres x = (i + 0.5) dx_LR (the HR grid has its own half-cell offset), so HR
  and LR fields describe the same positions; pyqg's coarsener drops this phase
  shift and so displaces the LR field by (dx_LR - dx_HR)/2 in x and y.
* Nyquist: the LR Nyquist row and column are set to zero. A real field cannot
  carry a phase-shifted Nyquist cosine, the HR modes with |l| = ny_LR/2 have no
  symmetric home on the LR grid, and the Gaussian filter leaves 19 % of the
  amplitude there anyway. So C(q) lives strictly inside |k| < nx_LR/2,
  |l| < ny_LR/2 (in index units).

``subgrid_forcing`` is the closure target S, the term ADDED to the LR tendency:
dq_LR/dt = RHS_LR(q_LR) + S with q_LR = C(q_HR) and S = C(RHS_HR(q_HR)) - RHS_LR(C(q_HR)),
the HR tendency evaluated with 3/2-rule dealiased products.
"""
from __future__ import annotations

import math

import torch

__all__ = ["coarsen", "filter_gain", "subgrid_forcing"]


def _index_wavenumbers(nx: int, ny: int, dtype=torch.float64, device=None):
    """Integer wavenumbers (m over x as rfft, n over y in FFT order), as float tensors (nl, nk)."""
    m = torch.arange(nx // 2 + 1, dtype=dtype, device=device)[None, :]
    n = torch.fft.fftfreq(ny, d=1.0 / ny, dtype=dtype, device=device)[:, None]
    return m, n


def filter_gain(nx_lr: int, ny_lr: int | None = None, nx: int | None = None, ny: int | None = None,
                filter: str | None = "gaussian", dtype=torch.float64, device=None) -> torch.Tensor:
    """Transfer function of the coarse-graining filter on an (ny, nx) rfft grid (default: the LR grid).

    Wavenumbers in units of the domain (index m -> k = 2 pi m / L), so the gain
    exp(-((k dx_LR)^2 + (l dy_LR)^2) / 6) needs only grid sizes. ``filter`` None
    or "sharp" gives ones (truncation only).
    """
    ny_lr = nx_lr if ny_lr is None else ny_lr
    nx = nx_lr if nx is None else nx
    ny = ny_lr if ny is None else ny
    m, n = _index_wavenumbers(nx, ny, dtype, device)
    if filter in (None, "sharp", "none"):
        return torch.ones(ny, nx // 2 + 1, dtype=dtype, device=device)
    if filter != "gaussian":
        raise ValueError(f"unknown filter {filter!r}")
    kdx = 2 * math.pi * m / nx_lr
    ldy = 2 * math.pi * n / ny_lr
    return torch.exp(-(kdx ** 2 + ldy ** 2) * (2.0 ** 2) / 24.0)


def coarsen(q_hr: torch.Tensor, nx_lr: int, ny_lr: int | None = None, filter: str | None = "gaussian") -> torch.Tensor:
    """Coarse-grain HR grid fields (..., ny, nx) to LR grid values (..., ny_lr, nx_lr).

    Spectral truncation to |m| < nx_lr/2, |n| < ny_lr/2 (LR Nyquist dropped), phase
    shift to the LR cell centres, then ``filter`` ("gaussian", Ross et al.'s
    Operator 2, or None/"sharp" for truncation only). Any leading dims; float32 or
    float64; differentiable.
    """
    ny_hr, nx_hr = q_hr.shape[-2:]
    ny_lr = nx_lr * ny_hr // nx_hr if ny_lr is None else ny_lr
    if nx_lr > nx_hr or ny_lr > ny_hr or nx_lr % 2 or ny_lr % 2:
        raise ValueError(f"cannot coarsen ({ny_hr}, {nx_hr}) to ({ny_lr}, {nx_lr})")
    rdt = q_hr.dtype
    qh = torch.fft.rfft2(q_hr)
    kx, hy = nx_lr // 2, ny_lr // 2
    trunc = torch.cat([qh[..., :hy, :kx], qh[..., ny_hr - hy + 1:, :kx]], dim=-2)
    m, n = _index_wavenumbers(nx_lr, ny_lr, torch.float64, q_hr.device)
    m, n = m[:, :kx], torch.cat([n[:hy], n[ny_lr - hy + 1:]])
    shift = math.pi * (m * (1.0 / nx_lr - 1.0 / nx_hr) + n * (1.0 / ny_lr - 1.0 / ny_hr))
    gain = filter_gain(nx_lr, ny_lr, filter=filter, dtype=torch.float64, device=q_hr.device)
    gain = torch.cat([gain[:hy, :kx], gain[ny_lr - hy + 1:, :kx]])
    op = (gain * (nx_lr * ny_lr) / (nx_hr * ny_hr)) * torch.exp(1j * shift)
    out = trunc * op.to(qh.dtype)
    full = out.new_zeros(*out.shape[:-2], ny_lr, kx + 1)
    full[..., :hy, :kx] = out[..., :hy, :]
    full[..., hy + 1:, :kx] = out[..., hy:, :]
    return torch.fft.irfft2(full, s=(ny_lr, nx_lr)).to(rdt)


def subgrid_forcing(m_hr, m_lr, q_hr: torch.Tensor, filter: str | None = "gaussian") -> torch.Tensor:
    """Subgrid PV forcing S on the LR grid (1/s^2), the term ADDED to the LR tendency.

    S = C(RHS_HR(q_hr)) - RHS_LR(C(q_hr)): RHS_HR with 3/2-rule dealiased products
    (``QGModel.tendency(..., dealias=True)``), RHS_LR the LR model's own tendency
    (aliased, as it runs), C = ``coarsen``. Linear terms (beta, mean shear, drag)
    cancel to round-off because C is diagonal in wavenumber, so S is the
    coarse-graining commutator of the advection. Shape (..., nz, ny_lr, nx_lr).
    """
    for name in ("L", "W", "nz", "beta", "rd", "delta", "U1", "U2", "rek", "nu"):
        if getattr(m_hr, name) != getattr(m_lr, name):
            raise ValueError(f"HR and LR models differ in {name}: {getattr(m_hr, name)} vs {getattr(m_lr, name)}")
    rhs_hr = m_hr.tendency(q_hr, dealias=True)
    q_lr = coarsen(q_hr, m_lr.nx, m_lr.ny, filter=filter)
    return coarsen(rhs_hr, m_lr.nx, m_lr.ny, filter=filter) - m_lr.tendency(q_lr)
