"""Homogeneous, isotropic covariances on doubly periodic grids, diagonal in Fourier space.

``SpectralCovariance`` is the periodic-grid counterpart of ``baselines.core.covariance.StateCovariance``
with the same interface (``sqrt_apply``, ``sqrt_apply_T``, ``apply``, ``sample``,
``variance``) on flattened states ``(..., 2 * ny * nx)`` (layer, y, x in C order).
On a doubly periodic grid a homogeneous covariance is diagonal in Fourier space;
here it is also isotropic (it depends on |k| only, averaged over rings of integer
|k| in units of 2 pi / L) and multivariate between the levels of the state: one
real symmetric matrix P(|k|) (levels x levels) per ring, so an observation of a
derived field (e.g. SSH, the upper-layer streamfunction of a two-layer state)
updates every level.

Normalisation: with ``e_hat = rfft2(e)`` (numpy/torch default, unnormalised) and
N = nx ny grid points, ``P(k) = E[e_hat e_hat^H] / N`` is the Fourier transform of
the covariance function, ``B x = irfft2(P rfft2(x))`` and
``B^{1/2} v = irfft2(S rfft2(v))`` with ``S = P^{1/2}`` (symmetric square root per
ring), so white noise v ~ N(0, I) gives a field with covariance B. S is real and
even in k, so ``B^{1/2}`` is self-adjoint: ``sqrt_apply_T = sqrt_apply``.

Observed fields: with the spectral transfer t_l(k) of a ``FieldMap`` (the
observed field f = irfft2(sum_l t_l rfft2(x_l))), ``field_gain``,
``field_variance`` and ``field_regression`` give B^{1/2} composed with the map,
the field's pointwise variance under B, and the minimum-B-norm state increment
with a given field increment.
"""
from __future__ import annotations

import lazy_loader as lazy
import numpy as np

torch = lazy.load("torch")


def ring_index(ny: int, nx: int) -> np.ndarray:
    """Integer ring |k| (units of 2 pi / L) of each rfft2 cell, (ny, nx//2+1)."""
    kx = np.arange(nx // 2 + 1)
    ky = np.fft.fftfreq(ny, 1.0 / ny)
    return np.rint(np.sqrt(kx[None, :] ** 2 + ky[:, None] ** 2)).astype(np.int64)


def rfft_weights(ny: int, nx: int) -> np.ndarray:
    """Number of full-plane cells each rfft2 cell stands for (2, or 1 at kx = 0 and Nyquist)."""
    w = np.full((ny, nx // 2 + 1), 2.0)
    w[:, 0] = 1.0
    if nx % 2 == 0:
        w[:, -1] = 1.0
    return w


class SpectralCovariance:
    """B = irfft2(P(|k|) rfft2(.)) for two-layer fields, P a 2x2 matrix per ring (see module doc)."""

    def __init__(self, ring_spectrum, ny: int, nx: int, scale: float = 1.0, device="cpu"):
        P = np.asarray(ring_spectrum, dtype=np.float64)  # (n_rings, 2, 2)
        P = 0.5 * (P + np.swapaxes(P, -1, -2))
        self.ring_spectrum = P
        self.ny, self.nx, self.nz = ny, nx, P.shape[-1]
        self.n = self.nz * ny * nx
        self.scale = float(scale)
        rings = ring_index(ny, nx)
        lam, V = np.linalg.eigh(P)
        lam = np.clip(lam, 0.0, None)
        Sr = (V * np.sqrt(lam)[..., None, :]) @ np.swapaxes(V, -1, -2)
        Sr[0] = 0.0  # the domain-mean mode carries no error (zero-mean anomalies)
        Pr = P.copy()
        Pr[0] = 0.0
        rings = np.minimum(rings, len(P) - 1)
        # (nz, nz, ny, nk) symbols
        self.device = torch.device(device)
        self._S = torch.as_tensor(np.moveaxis(Sr[rings], (-2, -1), (0, 1)), device=self.device)
        self._P = torch.as_tensor(np.moveaxis(Pr[rings], (-2, -1), (0, 1)), device=self.device)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_samples(cls, samples, scale: float = 1.0, device="cpu") -> SpectralCovariance:
        """Ring-averaged cross-spectra of samples (n, nz, ny, nx) (their mean is not removed)."""
        x = torch.as_tensor(np.asarray(samples, dtype=np.float64))
        n, nz, ny, nx = x.shape
        xh = torch.fft.rfft2(x).numpy()
        cross = np.einsum("sakl,sbkl->abkl", xh, xh.conj()).real / (n * nx * ny)  # (nz, nz, ny, nk)
        rings = ring_index(ny, nx)
        w = rfft_weights(ny, nx)
        nr = rings.max() + 1
        den = np.bincount(rings.ravel(), weights=w.ravel(), minlength=nr)
        P = np.empty((nr, nz, nz))
        for a in range(nz):
            for b in range(nz):
                P[:, a, b] = np.bincount(rings.ravel(), weights=(w * cross[a, b]).ravel(), minlength=nr) / np.maximum(den, 1)
        return cls(P, ny, nx, scale=scale, device=device)

    def scaled(self, scale: float) -> SpectralCovariance:
        return SpectralCovariance(self.ring_spectrum, self.ny, self.nx, scale=scale, device=self.device)

    def to(self, device=None, dtype=torch.float64) -> SpectralCovariance:
        return SpectralCovariance(self.ring_spectrum, self.ny, self.nx, scale=self.scale, device=device or self.device)

    # -- the B interface (flattened states) ------------------------------------------------
    def _grid(self, v: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if v.shape[-1] == self.n and (v.ndim == 1 or v.shape[-3:] != (self.nz, self.ny, self.nx)):
            return v.reshape(*v.shape[:-1], self.nz, self.ny, self.nx), True
        return v, False

    def _mul(self, sym: torch.Tensor, v: torch.Tensor, factor: float) -> torch.Tensor:
        g, flat = self._grid(v)
        vh = torch.fft.rfft2(g.to(torch.float64))
        out = torch.einsum("abkl,...bkl->...akl", sym.to(vh.dtype), vh) * factor
        x = torch.fft.irfft2(out, s=(self.ny, self.nx))
        return x.reshape(*x.shape[:-3], self.n) if flat else x

    def sqrt_apply(self, v: torch.Tensor) -> torch.Tensor:
        """B^{1/2} v, v (..., n) or (..., nz, ny, nx)."""
        return self._mul(self._S, v, self.scale ** 0.5)

    def sqrt_apply_T(self, x: torch.Tensor) -> torch.Tensor:
        return self.sqrt_apply(x)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return self._mul(self._P, x, self.scale)

    def variance(self) -> torch.Tensor:
        """Pointwise variance per layer (nz,) (homogeneous: the same at every point)."""
        w = torch.as_tensor(rfft_weights(self.ny, self.nx), device=self.device)
        d = torch.stack([self._P[a, a] for a in range(self.nz)])
        return self.scale * (d * w).sum((-2, -1)) / (self.nx * self.ny)

    def sample(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """``k`` draws from N(0, B) as grids (k, nz, ny, nx), from a CPU generator."""
        z = torch.randn((k, self.nz, self.ny, self.nx), generator=generator, dtype=torch.float64)
        return self.sqrt_apply(z.to(self.device))

    # -- operators of an observed field ---------------------------------------------------------------
    def field_gain(self, transfer: torch.Tensor) -> torch.Tensor:
        """g_l(k) = sum_m S_lm t_m: rfft2(field of B^{1/2} v) = sum_l g_l rfft2(v_l); (nz, ny, nk)."""
        t = transfer.to(self._S)
        return self.scale ** 0.5 * torch.einsum("abkl,bkl->akl", self._S, t)

    def field_regression(self, transfer: torch.Tensor) -> torch.Tensor:
        """r_l(k) = (P t)_l / (t^T P t): the state increment per unit field increment, (nz, ny, nk).

        Multiplying a field increment's spectrum by r_l gives the level-l state increment
        of minimum B-norm that has exactly that field (the balanced, B-regressed update).
        """
        t = transfer.to(self._P)
        Pt = torch.einsum("abkl,bkl->akl", self._P, t)
        tPt = (t * Pt).sum(0)
        ok = tPt > tPt.max() * 1e-14
        return torch.where(ok, Pt / torch.where(ok, tPt, torch.ones_like(tPt)), torch.zeros_like(Pt))

    def field_variance(self, transfer: torch.Tensor) -> float:
        """Pointwise variance of the field under B."""
        t = transfer.to(self._P)
        tPt = (t * torch.einsum("abkl,bkl->akl", self._P, t)).sum(0)
        w = torch.as_tensor(rfft_weights(self.ny, self.nx), device=tPt.device)
        return float(self.scale * (tPt * w).sum() / (self.nx * self.ny))
