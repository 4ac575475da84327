"""Reverse-process samplers on a subsequence of time steps.

Both samplers run a descending time grid 1 = t_N > ... > t_0 = 0 (``n_steps``
uniform steps, snapped to the scheduler's training grid k/T when it has one),
one network evaluation (NFE) per reverse step. Writing ab = alpha_bar, a step
t -> s (s < t) with (x0_hat, eps_hat) = denoise_fn(x_t, t):

* ``DDPMSampler`` (ancestral, Ho et al. 2020, on a subsequence): sample the
  Gaussian posterior q(x_s | x_t, x0 = x0_hat)::

      mean = sqrt(ab_s)(1 - ab_t/ab_s)/(1 - ab_t) x0_hat + sqrt(ab_t/ab_s)(1 - ab_s)/(1 - ab_t) x_t
      var  = (1 - ab_s)/(1 - ab_t) (1 - ab_t/ab_s)

  With few steps this underdisperses even with an exact denoiser (the
  posterior variance ignores Var[x0 | x_t]): up to ~10 % low std at 50 steps on a
  Gaussian toy, ~2 % at 250.

* ``DDIMSampler(eta)`` (Song et al. 2021)::

      sig^2 = eta^2 var,   x_s = sqrt(ab_s) x0_hat + sqrt(1 - ab_s - sig^2) eps_hat + sig z

  eta = 0 is deterministic given x_T; eta = 1 is the DDPM step.

Nothing is clipped (fields are normalised, not images).

Callback protocol: ``hook(x_s, s, t, x0_hat) -> x_s`` is applied after every
reverse step t -> s (s, t Python floats); inpainting and guidance plug in
here. A time sequence passed as ``steps`` may also go *up* (t -> s > t); such a
transition re-noises with q(x_s | x_t) and costs no NFE (RePaint resampling).
The sample loop runs under ``torch.no_grad()``; guidance re-enables gradients
inside its own denoise function.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import NamedTuple

import torch
from torch import Tensor

from .scheduler import NoiseScheduler

__all__ = [
    "SAMPLERS",
    "DDIMSampler",
    "DDPMSampler",
    "Hook",
    "SampleOutput",
    "Sampler",
    "compose_hooks",
    "gaussian_like",
    "get_sampler",
    "uniform_timesteps",
]

Hook = Callable[[Tensor, float, float, Tensor], Tensor]


class SampleOutput(NamedTuple):
    sample: Tensor
    nfe: int


def compose_hooks(*hooks: Hook | None) -> Hook | None:
    """One hook applying the given ones in order (None entries skipped)."""
    hs = [h for h in hooks if h is not None]
    if not hs:
        return None
    if len(hs) == 1:
        return hs[0]

    def hook(x, t_prev, t, x0_hat):
        for h in hs:
            x = h(x, t_prev, t, x0_hat)
        return x

    return hook


def uniform_timesteps(n_steps: int, T: int | None = None) -> Tensor:
    """Descending float64 grid of n_steps + 1 times from 1 to 0, uniform, snapped to k/T if T is given."""
    if n_steps < 1:
        raise ValueError("n_steps must be >= 1")
    if T is None:
        return torch.linspace(1.0, 0.0, n_steps + 1, dtype=torch.float64)
    if n_steps > T:
        raise ValueError(f"n_steps={n_steps} exceeds the T={T} steps of the training grid")
    k = torch.round(torch.arange(n_steps, -1, -1, dtype=torch.float64) * (T / n_steps))
    return k / T


def gaussian_like(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """N(0, I) of like's shape, dtype and device, drawn from generator (which may live on another device)."""
    gdev = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=gdev, dtype=like.dtype).to(like.device)


class Sampler(ABC):
    """Interface: ``sample(denoise_fn, shape or x_T, steps, generator, hook) -> SampleOutput(sample, nfe)``."""

    def __init__(self, scheduler: NoiseScheduler, n_steps: int = 50):
        self.scheduler, self.n_steps = scheduler, int(n_steps)

    def timesteps(self, n_steps: int | None = None) -> Tensor:
        return uniform_timesteps(self.n_steps if n_steps is None else n_steps, self.scheduler.T)

    @abstractmethod
    def reverse_step(self, x_t: Tensor, t: float, t_prev: float, x0_hat: Tensor, eps_hat: Tensor,
                     generator: torch.Generator | None) -> Tensor:
        """One reverse step t -> t_prev < t given the denoiser's estimates."""

    def _times(self, steps) -> list[float]:
        if steps is None or isinstance(steps, int):
            return self.timesteps(steps).tolist()
        return [float(s) for s in (steps.tolist() if isinstance(steps, Tensor) else steps)]

    @torch.no_grad()
    def sample(self, denoise_fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
               shape_or_x: Sequence[int] | Tensor, steps: int | Sequence[float] | Tensor | None = None,
               generator: torch.Generator | None = None, hook: Hook | None = None,
               dtype: torch.dtype = torch.float32, device=None) -> SampleOutput:
        """Run the reverse process.

        shape_or_x: a shape (x_T ~ N(0, I) is drawn from ``generator``) or x_T itself.
        steps: None (``self.n_steps``), an int number of uniform steps, or an explicit
        time sequence starting at the level of x_T (usually 1) and ending at 0."""
        if isinstance(shape_or_x, Tensor):
            x = shape_or_x.clone()
        else:
            gdev = generator.device if generator is not None else device
            x = torch.randn(tuple(shape_or_x), generator=generator, device=gdev, dtype=dtype)
            if device is not None:
                x = x.to(device)
        times = self._times(steps)
        B, nfe = x.shape[0], 0
        for t, t_prev in pairwise(times):
            if t_prev < t:
                x0_hat, eps_hat = denoise_fn(x, torch.full((B,), t, dtype=x.dtype, device=x.device))
                nfe += 1
                x = self.reverse_step(x, t, t_prev, x0_hat, eps_hat, generator)
                if hook is not None:
                    x = hook(x, t_prev, t, x0_hat)
            elif t_prev > t:
                x = self.scheduler.renoise(x, t, t_prev, gaussian_like(x, generator))
        return SampleOutput(x, nfe)

    def _ab(self, t: float) -> float:
        return float(self.scheduler.alpha_bar(t))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_steps={self.n_steps})"


class DDPMSampler(Sampler):
    """Ancestral sampling of the posterior q(x_s | x_t, x0_hat)."""

    def reverse_step(self, x_t, t, t_prev, x0_hat, eps_hat, generator):
        ab_t, ab_s = self._ab(t), self._ab(t_prev)
        a = ab_t / ab_s
        c0 = math.sqrt(ab_s) * (1.0 - a) / (1.0 - ab_t)
        ct = math.sqrt(a) * (1.0 - ab_s) / (1.0 - ab_t)
        var = max((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - a), 0.0)
        x = c0 * x0_hat + ct * x_t
        if var > 0.0:
            x = x + math.sqrt(var) * gaussian_like(x, generator)
        return x


class DDIMSampler(Sampler):
    """DDIM; eta = 0 deterministic (probability-flow-like), eta = 1 equals DDPM."""

    def __init__(self, scheduler: NoiseScheduler, n_steps: int = 50, eta: float = 0.0):
        super().__init__(scheduler, n_steps)
        self.eta = float(eta)

    def reverse_step(self, x_t, t, t_prev, x0_hat, eps_hat, generator):
        ab_t, ab_s = self._ab(t), self._ab(t_prev)
        var = max((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s), 0.0)
        sig2 = self.eta ** 2 * var
        x = math.sqrt(ab_s) * x0_hat + math.sqrt(max(1.0 - ab_s - sig2, 0.0)) * eps_hat
        if sig2 > 0.0:
            x = x + math.sqrt(sig2) * gaussian_like(x, generator)
        return x

    def __repr__(self) -> str:
        return f"DDIMSampler(n_steps={self.n_steps}, eta={self.eta})"


SAMPLERS: dict[str, type[Sampler]] = {"ddpm": DDPMSampler, "ddim": DDIMSampler}


def get_sampler(name: str, scheduler: NoiseScheduler, **kwargs) -> Sampler:
    """Sampler by name ("ddpm", "ddim"); kwargs (n_steps, eta for DDIM) go to the constructor."""
    try:
        cls = SAMPLERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose from {sorted(SAMPLERS)}") from None
    if cls is DDPMSampler:
        kwargs.pop("eta", None)
    return cls(scheduler, **kwargs)
