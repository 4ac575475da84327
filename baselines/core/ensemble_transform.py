"""Pieces shared by the ensemble filters (``enkf``, ``letkf``).

- ``posterior_draws``: the analysis ensemble of a problem without members (a
  cycling cold start, whose background is the climatological mean) for small
  states: M draws from the Gaussian posterior with the climatological prior
  N(xb, B) (B dense) and the problem's observations, i.e. mean
  xa = xb + B H^T (H B H^T + R)^-1 (y - H xb) and covariance
  Pa = B^{1/2} (I + B^{T/2} H^T R^-1 H B^{1/2})^-1 B^{T/2}; draws centred on
  xa, from a CPU generator seeded with the method's seed (the same ensemble
  every run).
- ``anomaly_ensemble``: the cold start for large states: the background plus
  the centred anomalies of M training states drawn at random (seeded), to be
  followed by a regular analysis. Starting a rank-deficient ensemble from the full
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

import lazy_loader as lazy
import numpy as np

torch = lazy.load("torch")


def posterior_draws(xb, y, rinv, H, cov, n_members: int, seed: int):
    """Analysis ensemble (B, M, n) of background xb (B, n), obs y, rinv (B, P), operator H, prior N(xb, cov).

    ``cov`` is a dense ``StateCovariance`` (its square root ``cov.sqrt`` is used as a matrix).
    """
    U = cov.sqrt.to(xb)
    n = U.shape[0]
    HU = H(U.T.expand(xb.shape[0], n, n))               # (B, n, P): H of every column of U
    S = (HU * rinv[:, None, :]) @ HU.transpose(-1, -2)
    lam, V = torch.linalg.eigh(S + torch.eye(n, dtype=S.dtype, device=S.device))
    w = (HU @ (rinv * (y - H(xb))).unsqueeze(-1))
    v = V @ ((V.transpose(-1, -2) @ w) / lam.unsqueeze(-1))
    xa = xb + (U @ v).squeeze(-1)
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn((xb.shape[0], n_members, n), generator=gen, dtype=torch.float64).to(xb)
    z = z - z.mean(1, keepdim=True)
    pert = ((z @ V) / lam.sqrt().unsqueeze(-2)) @ V.transpose(-1, -2) @ U.T
    return xa[:, None, :] + pert


def anomaly_ensemble(xb, states: np.ndarray, n_members: int, seed: int):
    """(B, M, *state): background xb (B, *state) + centred anomalies of M random ``states`` (n, *state) each."""
    rng = np.random.default_rng(seed)
    n = len(states)
    pick = np.stack([rng.choice(n, size=n_members, replace=n < n_members) for _ in range(xb.shape[0])])
    S = torch.as_tensor(states[pick], device=xb.device, dtype=xb.dtype)
    return xb[:, None] + (S - S.mean(1, keepdim=True))


def transform(C: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ETKF weights: C (..., M, M), q (..., M) -> w (..., M), W (..., M, M) (see module doc)."""
    M = C.shape[-1]
    lam, V = torch.linalg.eigh(C + (M - 1) * torch.eye(M, dtype=C.dtype, device=C.device))
    w = V @ ((V.transpose(-1, -2) @ q.unsqueeze(-1)) / lam.unsqueeze(-1))
    W = (V * ((M - 1) / lam).sqrt().unsqueeze(-2)) @ V.transpose(-1, -2)
    return w.squeeze(-1), W
