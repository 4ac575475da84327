"""Batched conjugate gradients for symmetric positive-definite systems.

``cg(matvec, b)`` solves A x = b for a batch of independent systems (b of
shape (B, n), ``matvec`` maps (B, n) -> (B, n)), each with its own step sizes;
a system stops updating once its residual satisfies
``|r| <= tol * |b|``. Used to minimise quadratic variational cost functions
in control space, whose Hessian ``I + U^T H^T R^-1 H U`` is SPD with all
eigenvalues >= 1.
"""
from __future__ import annotations

from collections.abc import Callable

import lazy_loader as lazy

torch = lazy.load("torch")


def cg(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, tol: float = 1e-8,
       maxiter: int | None = None) -> tuple[torch.Tensor, int, torch.Tensor]:
    """Solve ``matvec(x) = b`` row by row; returns (x, iterations, relative residual per row)."""
    maxiter = b.shape[-1] if maxiter is None else int(maxiter)
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = (r * r).sum(-1)
    b2 = rs.clone()
    target = tol**2 * b2
    zero = torch.zeros_like(rs)
    it = 0
    while it < maxiter:
        done = rs <= target
        if bool(done.all()):
            break
        Ap = matvec(p)
        alpha = torch.where(done, zero, rs / (p * Ap).sum(-1))
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * Ap
        rs_new = (r * r).sum(-1)
        beta = torch.where(done, zero, rs_new / rs)
        p = r + beta[:, None] * p
        rs = rs_new
        it += 1
    return x, it, (rs / b2.clamp_min(torch.finfo(b2.dtype).tiny)).sqrt()
