"""Pieces shared by the ensemble filters (``enkf``, ``letkf``).

- ``cold_start``: the analysis ensemble of a case without members (a cycling
  cold start, whose background is the climatological mean): M draws from the
  Gaussian posterior with the climatological prior N(xb, B) and the case's
  observations, i.e. mean xa = xb + B H^T (H B H^T + R)^-1 (y - H xb) and
  covariance Pa = B^{1/2} (I + B^{T/2} H^T R^-1 H B^{1/2})^-1 B^{T/2}; draws
  centred on xa, from a CPU generator seeded with the method's seed (the same
  ensemble every run). Starting a rank-deficient ensemble from the full
  climatological spread instead leaves errors outside its span that a filter
  with little inflation never removes (filter divergence from the cold start).
- ``transform``: the ensemble-transform (ETKF) analysis in ensemble space
  (Bishop et al. 2001; Hunt et al. 2007), batched over any leading dims:
  given C = Y^T R^-1 Y and q = Y^T R^-1 (y - H xm) for the (inflated)
  observation-space anomalies Y (M columns), returns the mean weights
  w = Pa q and the symmetric square-root transform W = [(M-1) Pa]^{1/2},
  with Pa = [(M-1) I + C]^-1, from one batched eigh. The symmetric square root
  keeps the analysis ensemble centred on the analysis mean (Sakov & Oke
  2008's "Sqrt" scheme without rotations).
"""
from __future__ import annotations

import torch

from .case_tensors import GriddedCase


def cold_start(g: GriddedCase, n_members: int, cov, seed: int) -> torch.Tensor:
    """Analysis ensemble (B, M, n) of a member-less case with prior N(xb, cov) (see module doc).

    ``cov`` is a dense ``StateCovariance`` (its square root ``cov.sqrt`` is used as a matrix).
    """
    U = cov.sqrt.to(g.xb)
    S = U.T[None] * g.rinv[:, None, :] @ U[None]
    lam, V = torch.linalg.eigh(S + torch.eye(U.shape[0], dtype=S.dtype, device=S.device))
    v = V @ ((V.transpose(-1, -2) @ (U.T @ (g.rinv * (g.y - g.xb)).unsqueeze(-1))) / lam.unsqueeze(-1))
    xa = g.xb + (U @ v).squeeze(-1)
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn((g.B, n_members, U.shape[0]), generator=gen, dtype=torch.float64).to(g.xb)
    z = z - z.mean(1, keepdim=True)
    pert = ((z @ V) / lam.sqrt().unsqueeze(-2)) @ V.transpose(-1, -2) @ U.T
    return xa[:, None, :] + pert


def transform(C: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ETKF weights: C (..., M, M), q (..., M) -> w (..., M), W (..., M, M) (see module doc)."""
    M = C.shape[-1]
    lam, V = torch.linalg.eigh(C + (M - 1) * torch.eye(M, dtype=C.dtype, device=C.device))
    w = V @ ((V.transpose(-1, -2) @ q.unsqueeze(-1)) / lam.unsqueeze(-1))
    W = (V * ((M - 1) / lam).sqrt().unsqueeze(-2)) @ V.transpose(-1, -2)
    return w.squeeze(-1), W
