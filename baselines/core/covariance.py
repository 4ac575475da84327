"""Static background-error covariances B behind one square-root interface.

Variational and ensemble methods use B only through

- ``sqrt_apply(v)``: ``B^{1/2} v`` for control vectors ``v`` (..., n_ctrl) -> states (..., n);
- ``sqrt_apply_T(x)``: the adjoint ``B^{T/2} x`` (..., n) -> (..., n_ctrl);
- ``apply(x)``: ``B x`` (..., n) -> (..., n);
- ``sample(k, generator)``: ``k`` draws from N(0, B), shape (k, n).

States are flattened to vectors of length ``n`` (for a gridded world, the
grid in C order). ``StateCovariance`` is a dense state-space matrix, right
for small states (Lorenz-96, n = 40). A homogeneous, isotropic covariance on a
periodic 2-D grid is ``baselines.core.spectral_covariance.SpectralCovariance``,
with the same methods.
"""
from __future__ import annotations

import lazy_loader as lazy
import numpy as np

torch = lazy.load("torch")


class StateCovariance:
    """A dense covariance ``B = U U^T`` with the symmetric square root ``U = V diag(sqrt(lam)) V^T``.

    Built from an eigendecomposition, so ``U`` is defined (and the control
    space has dimension n) even for a rank-deficient B; negative eigenvalues
    from round-off are clipped to zero.
    """

    def __init__(self, matrix, mean=None, n_samples: int | None = None):
        B = torch.as_tensor(np.asarray(matrix, dtype=np.float64))
        if B.ndim != 2 or B.shape[0] != B.shape[1]:
            raise ValueError(f"a covariance must be a square matrix, got shape {tuple(B.shape)}")
        B = 0.5 * (B + B.T)
        lam, V = torch.linalg.eigh(B)
        lam = lam.clamp_min(0.0)
        self.matrix = B
        self.eigenvalues = lam
        self.sqrt = (V * lam.sqrt()) @ V.T
        self.mean = None if mean is None else torch.as_tensor(np.asarray(mean, dtype=np.float64))
        self.n_samples = n_samples

    @classmethod
    def from_samples(cls, samples, center: bool = True) -> StateCovariance:
        """Sample covariance of ``samples`` (n_samples, n) (unbiased); ``mean`` is their mean."""
        X = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
        if X.shape[0] < 2:
            raise ValueError("a sample covariance needs at least two samples")
        mean = X.mean(0)
        A = X - mean if center else X
        return cls(A.T @ A / (X.shape[0] - 1), mean=mean, n_samples=X.shape[0])

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    def to(self, device=None, dtype=torch.float64) -> StateCovariance:
        """A copy whose tensors live on ``device`` with ``dtype``."""
        out = object.__new__(StateCovariance)
        for k, v in vars(self).items():
            setattr(out, k, v.to(device=device, dtype=dtype) if torch.is_tensor(v) else v)
        return out

    def sqrt_apply(self, v: torch.Tensor) -> torch.Tensor:
        return v @ self.sqrt.T

    def sqrt_apply_T(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.sqrt

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix.T

    def variance(self) -> torch.Tensor:
        """The diagonal of B (n,)."""
        return torch.diagonal(self.matrix)

    def sample(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """``k`` draws from N(0, B), shape (k, n), from a CPU generator (same numbers on every device)."""
        z = torch.randn((k, self.n), generator=generator, dtype=torch.float64)
        return self.sqrt_apply(z.to(self.sqrt))
