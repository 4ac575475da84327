"""Noise schedulers: how much signal is left at diffusion time t.

Variance-preserving forward process, t in [0, 1] (t = 0: data, t = 1: noise)::

    x_t = alpha_t x_0 + sigma_t eps,   eps ~ N(0, I),   alpha_t^2 + sigma_t^2 = 1,
    alpha_bar_t = alpha_t^2,   log_snr_t = log(alpha_bar_t / (1 - alpha_bar_t)).

A scheduler is fully described by alpha_bar(t); everything else follows. ``T``
is the number of discrete steps of the training grid (t = k/T, k = 1..T);
``T = None`` means continuous time. Coefficients are computed in float64 and
returned in the dtype of ``t`` (float64 for Python numbers).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

__all__ = [
    "SCHEDULERS",
    "CosineScheduler",
    "LinearScheduler",
    "NoiseScheduler",
    "broadcast_like",
    "get_scheduler",
]


def _as_time(t: Tensor | float) -> Tensor:
    return torch.as_tensor(t, dtype=torch.float64)


def _out_dtype(t: Tensor | float) -> torch.dtype:
    return t.dtype if isinstance(t, Tensor) and t.is_floating_point() else torch.float64


def broadcast_like(v: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-sample coefficient (scalar or (B,)) to broadcast against x (B, C, *spatial)."""
    v = v.to(device=x.device, dtype=x.dtype)
    if v.ndim == 0:
        return v
    return v.reshape(v.shape[0], *([1] * (x.ndim - 1)))


class NoiseScheduler(ABC):
    """Interface: ``alpha_bar(t)``; ``alpha``, ``sigma``, ``log_snr`` and ``q_sample`` derive from it."""

    T: int | None = None

    @abstractmethod
    def _alpha_bar64(self, t: Tensor) -> Tensor:
        """alpha_bar at float64 times t (same shape), in [alpha_bar_min, 1]."""

    def alpha_bar(self, t: Tensor | float) -> Tensor:
        return self._alpha_bar64(_as_time(t).clamp(0.0, 1.0)).to(_out_dtype(t))

    def alpha(self, t: Tensor | float) -> Tensor:
        return self._alpha_bar64(_as_time(t).clamp(0.0, 1.0)).sqrt().to(_out_dtype(t))

    def sigma(self, t: Tensor | float) -> Tensor:
        return (1.0 - self._alpha_bar64(_as_time(t).clamp(0.0, 1.0))).sqrt().to(_out_dtype(t))

    def log_snr(self, t: Tensor | float) -> Tensor:
        """log(alpha^2 / sigma^2); +inf at t = 0."""
        ab = self._alpha_bar64(_as_time(t).clamp(0.0, 1.0))
        return (ab.log() - torch.log1p(-ab)).to(_out_dtype(t))

    def coefficients(self, t: Tensor | float, like: Tensor) -> tuple[Tensor, Tensor]:
        """(alpha_t, sigma_t) shaped and typed to broadcast against ``like``."""
        ab = self._alpha_bar64(_as_time(t).clamp(0.0, 1.0))
        return broadcast_like(ab.sqrt(), like), broadcast_like((1.0 - ab).sqrt(), like)

    def q_sample(self, x0: Tensor, t: Tensor | float, eps: Tensor) -> Tensor:
        """Forward noising x_t = alpha_t x0 + sigma_t eps (t scalar or (B,))."""
        a, s = self.coefficients(t, x0)
        return a * x0 + s * eps

    def renoise(self, x_s: Tensor, s: float, t: float, eps: Tensor) -> Tensor:
        """Sample q(x_t | x_s) for t >= s: x_t = sqrt(ab_t/ab_s) x_s + sqrt(1 - ab_t/ab_s) eps.

        Used by RePaint's resampling to go back up in noise level."""
        ratio = float(self.alpha_bar(t)) / float(self.alpha_bar(s))
        ratio = min(ratio, 1.0)
        return math.sqrt(ratio) * x_s + math.sqrt(1.0 - ratio) * eps


class LinearScheduler(NoiseScheduler):
    """Ho et al. (2020): beta_k linear from beta_start to beta_end, k = 1..T.

    alpha_bar_k = prod_{j<=k} (1 - beta_j) exactly at t = k/T; in between,
    log alpha_bar is interpolated linearly in t (it is a cumulative sum of
    log(1 - beta), so this is the natural continuous extension)."""

    def __init__(self, beta_start: float = 1e-4, beta_end: float = 0.02, T: int = 1000):
        if T < 1:
            raise ValueError("T must be >= 1")
        self.T = int(T)
        self.beta_start, self.beta_end = float(beta_start), float(beta_end)
        self.betas = torch.linspace(beta_start, beta_end, self.T, dtype=torch.float64)
        self.discrete_alpha_bar = torch.cumprod(1.0 - self.betas, 0)  # k = 1..T
        self._log_ab = torch.cat([torch.zeros(1, dtype=torch.float64), self.discrete_alpha_bar.log()])

    def _alpha_bar64(self, t: Tensor) -> Tensor:
        u = t * self.T
        r = u.round()
        u = torch.where((u - r).abs() < 1e-9, r, u)  # exact table values on the grid
        k0 = u.floor().clamp(0, self.T - 1)
        w = u - k0
        k0 = k0.long()
        log_ab = self._log_ab[k0] * (1.0 - w) + self._log_ab[k0 + 1] * w
        return log_ab.exp()

    def __repr__(self) -> str:
        return f"LinearScheduler(beta_start={self.beta_start}, beta_end={self.beta_end}, T={self.T})"


class CosineScheduler(NoiseScheduler):
    """Nichol & Dhariwal (2021): alpha_bar(t) = f(t)/f(0), f(t) = cos^2(pi/2 (t + s)/(1 + s)).

    f(1) = 0, so alpha_bar is clipped to [alpha_bar_min, 1] (log-SNR(1) ~ -11.5 by
    default) to keep log_snr finite and x0 recoverable at t = 1. The same
    formula holds at the discrete steps t = k/T; ``T`` only defines the grid."""

    def __init__(self, s: float = 0.008, T: int | None = 1000, alpha_bar_min: float = 1e-5):
        self.s = float(s)
        self.T = None if T is None else int(T)
        self.alpha_bar_min = float(alpha_bar_min)
        self._f0 = math.cos(0.5 * math.pi * self.s / (1.0 + self.s)) ** 2

    def _alpha_bar64(self, t: Tensor) -> Tensor:
        f = torch.cos(0.5 * math.pi * (t + self.s) / (1.0 + self.s)) ** 2
        return (f / self._f0).clamp(self.alpha_bar_min, 1.0)

    def __repr__(self) -> str:
        return f"CosineScheduler(s={self.s}, T={self.T}, alpha_bar_min={self.alpha_bar_min})"


SCHEDULERS: dict[str, type[NoiseScheduler]] = {"linear": LinearScheduler, "cosine": CosineScheduler}


def get_scheduler(name: str, **kwargs) -> NoiseScheduler:
    """Scheduler by name ("linear", "cosine"); kwargs go to the constructor."""
    try:
        return SCHEDULERS[name.lower()](**kwargs)
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; choose from {sorted(SCHEDULERS)}") from None
