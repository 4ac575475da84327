"""Likelihood-score guidance (DPS, Chung et al. 2023) for observations y = h(x) + e, e ~ N(0, diag R).

The likelihood p(y | x_t) is approximated by N(y; h(x0_hat(x_t)), R), whose
negative log is, per sample,

    L(x_t) = 1/2 sum_p (y_p - h_p(x0_hat(x_t)))^2 / R_p.

After each reverse step t -> s the sample is moved down its gradient,
taken through the denoiser::

    x_s <- x_s - scale * grad_{x_t} L                     (normalize=False)
    x_s <- x_s - scale * grad_{x_t} L / sqrt(2 L)         (normalize=True: Chung et al.'s
                                                           zeta / ||y - h(x0_hat)||_R step)

Scale convention: ``scale`` is absolute and has the units of R (a variance in
the normalised state space). With normalize=False, for a point observation and
d x0_hat / d x_t ~ I (low noise), one step removes the fraction scale / R_p of the
residual at that point: scale = R fits it in one step, scale ~ 0.1-0.5 R is a
sensible start, scale = 0 is unguided, scale > R overshoots and scale > 2 R
diverges. With normalize=True (DPS with the R-weighted norm ||r||_R = sqrt(2 L))
the step length is ~ scale / sqrt(R), whatever the size of the misfit.
``DiffusionConfig.guidance_scale`` is relative: it is multiplied by mean(R).

Usage: the gradient needs the denoiser's graph, so ``guided = g.denoiser(denoise_fn)``
replaces the sampler's denoise function (it evaluates x0_hat with gradients on
and stores grad L) and ``g.hook`` is the sampler hook that applies the step.
``obs_op`` must be differentiable and act per sample; y and R broadcast
against its (B, P) output.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .scheduler import broadcast_like

__all__ = ["LikelihoodGuidance"]


class LikelihoodGuidance:
    """DPS-style guidance: ``denoiser(denoise_fn)`` + ``hook``."""

    def __init__(self, obs_op: Callable[[Tensor], Tensor], y: Tensor, R: Tensor | float,
                 scale: float = 1.0, normalize: bool = False):
        self.obs_op, self.y, self.R = obs_op, y, torch.as_tensor(R)
        self.scale, self.normalize = float(scale), bool(normalize)
        self._grad: Tensor | None = None
        self._misfit: Tensor | None = None

    def misfit(self, x0: Tensor) -> Tensor:
        """(B,) L = 1/2 sum (y - h(x0))^2 / R; entries with R = inf (padding, unobserved) add nothing."""
        r = self.y.to(x0) - self.obs_op(x0)
        R = self.R.to(x0)
        w = torch.where(torch.isfinite(R), 1.0 / R, torch.zeros_like(R))
        return 0.5 * (r.pow(2) * w).reshape(r.shape[0], -1).sum(1)

    def denoiser(self, denoise_fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]):
        """denoise_fn that also stores grad_{x_t} L (outputs detached)."""

        def guided(x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                x = x_t.detach().requires_grad_(True)
                x0_hat, eps_hat = denoise_fn(x, t)
                L = self.misfit(x0_hat)
                (grad,) = torch.autograd.grad(L.sum(), x)
            self._grad, self._misfit = grad.detach(), L.detach()
            return x0_hat.detach(), eps_hat.detach()

        return guided

    def hook(self, x: Tensor, t_prev: float, t: float, x0_hat: Tensor) -> Tensor:
        if self._grad is None:
            raise RuntimeError("LikelihoodGuidance.hook needs the sampler to use guidance.denoiser(denoise_fn)")
        g = self._grad
        if self.normalize:
            g = g / broadcast_like(torch.sqrt(2.0 * self._misfit).clamp_min(1e-12), g)
        self._grad = None
        return x - self.scale * g

    __call__ = hook
