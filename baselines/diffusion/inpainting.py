"""RePaint-style conditioning on sparse observations (Lugmayr et al. 2022; as in DiffDA, Huang et al. 2024).

Inputs (all in the normalised space of the sample, fields (B, C, *spatial)):

* hard mask m' (B, 1 or C, *spatial): number of observations per cell,
  m'_i = sum_j H_ji for a selection operator H (``hard_mask_from_indices``);
* x_tilde (B or 1, C, *spatial): a field built from the observations (e.g. the
  observations interpolated to the grid), trusted where the mask is;
* soft mask m = clip(G_sigma * m', 0, 1), G_sigma(d) = exp(-|d|^2 / (2 sigma_G^2))
  a periodic Gaussian of width sigma_G grid cells with peak 1, so an isolated
  observation keeps weight 1 at its cell and its neighbours get partial weight
  (sparse points are not lost to the network's coarse scales); the circular
  convolution is done by FFT over the spatial dims (1-D or 2-D); sigma_G = 0 gives
  the hard 0/1 mask clip(m', 0, 1).

At every reverse step t -> s of the sampler (the ``hook``)::

    known = alpha_s x_tilde + sigma_s z,  z ~ N(0, I) fresh,   x_s <- m known + (1 - m) x_s

so at s = 0 the masked cells equal x_tilde exactly (where m = 1).

Noisy observations: copying x_tilde puts its error into the analysis, and so
does any fixed weight m < 1 repeated at every step (the sample is pulled a
little further towards x_tilde at each of the N steps). With the error variance
r_i of x_tilde (``error_var``, in the sample's normalised units) the
replacement is *noise-level matched* instead (as DDNM+'s noisy-observation rule,
Wang et al. 2023): x_tilde = x + e is treated as a noisier sample of x, so at
every level with sigma_s^2 >= alpha_s^2 r_i::

    known = alpha_s x_tilde + sqrt(sigma_s^2 - alpha_s^2 r_i) z,   x_s <- m' known + (1 - m') x_s

is a draw of alpha_s x + sigma_s z (the observation error is part of the
diffusion noise), and below that level the cell is left to the denoiser. At the
level s* where sigma^2 = alpha^2 r the known value is alpha x_tilde exactly, so
a stochastic sampler (DDPM, or DDIM with eta = 1) continued from there samples
p(x | x_tilde) at the observed cells: for a Gaussian prior N(0, 1) and one
observation, mean x_tilde / (1 + r) and variance r / (1 + r), the Kalman
analysis. Only the hard support m' = clip(m', 0, 1) is used: the blurred mask's
neighbours hold no observation of their own. With DDIM eta = 0 the path below
s* is deterministic, so the ensemble has almost no spread at observed cells.

Resampling (RePaint's jump schedule), on the N = n_steps grid levels
i = N..0 (time t_i): at each jump level i in {0, J, 2J, ...} with i + J <= N,
after reaching i the sample is re-noised from t_i back up to t_{i+J}
(q(x_{t_{i+J}} | x_{t_i}), one draw, no NFE) and the J steps are redone; this
is repeated ``n_resample`` times (RePaint's jump_n_sample = n_resample + 1;
n_resample = 0: no resampling). Total network evaluations::

    NFE = N + floor(N / J) * n_resample * J        (``repaint_nfe``)

e.g. N = 50, J = 10, n_resample = 1: 100.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .sampler import Hook, SampleOutput, Sampler, compose_hooks, gaussian_like
from .scheduler import NoiseScheduler

__all__ = [
    "Inpainting",
    "hard_mask_from_indices",
    "periodic_blur",
    "periodic_gaussian_kernel",
    "repaint_nfe",
    "repaint_schedule",
    "soft_mask",
]


def periodic_gaussian_kernel(spatial_shape: tuple[int, ...], sigma: float) -> Tensor:
    """Peak-1 separable Gaussian exp(-d^2/(2 sigma^2)) on a periodic grid, centred at index 0 (float64)."""
    k = torch.ones((), dtype=torch.float64)
    for n in spatial_shape:
        i = torch.arange(n, dtype=torch.float64)
        d = torch.minimum(i, n - i)
        k1 = torch.exp(-0.5 * (d / sigma) ** 2) if sigma > 0 else (d == 0).to(torch.float64)
        k = k[..., None] * k1
    return k


def periodic_blur(field: Tensor, sigma: float) -> Tensor:
    """Circular convolution of field (B, C, *spatial) with the peak-1 periodic Gaussian (FFT, float64 inside)."""
    spatial = tuple(field.shape[2:])
    if not spatial:
        raise ValueError("field must be (B, C, *spatial) with at least one spatial dim")
    kern = periodic_gaussian_kernel(spatial, sigma).to(field.device)
    if sigma <= 0 or float(kern.sum()) == 1.0:  # a delta (sigma -> 0): identity, exactly
        return field.clone()
    dims = tuple(range(2, field.ndim))
    f = torch.fft.rfftn(field.to(torch.float64), dim=dims)
    g = torch.fft.rfftn(kern, dim=tuple(range(kern.ndim)))
    return torch.fft.irfftn(f * g, s=spatial, dim=dims).to(field.dtype)


def soft_mask(hard_mask: Tensor, sigma_g: float = 1.5) -> Tensor:
    """m = clip(blur(m', sigma_g), 0, 1); sigma_g = 0 gives clip(m', 0, 1)."""
    return periodic_blur(hard_mask, sigma_g).clamp(0.0, 1.0)


def hard_mask_from_indices(index: Tensor, spatial_shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Tensor:
    """Observation counts per cell, (B, 1, *spatial), from flat cell indices (B, P): m'_i = sum_j H_ji."""
    index = torch.as_tensor(index, dtype=torch.long)
    if index.ndim == 1:
        index = index[None]
    n = math.prod(spatial_shape)
    m = torch.zeros(index.shape[0], n, dtype=dtype, device=index.device)
    m.scatter_add_(1, index, torch.ones(index.shape, dtype=dtype, device=index.device))
    return m.reshape(index.shape[0], 1, *spatial_shape)


def repaint_schedule(n_steps: int, jump_length: int = 10, n_resample: int = 1) -> list[int]:
    """Grid levels visited, from n_steps down to 0, with RePaint jumps (see module docstring)."""
    if n_steps < 1:
        raise ValueError("n_steps must be >= 1")
    J = int(jump_length)
    jumps = {i: int(n_resample) for i in range(0, n_steps - J + 1, J)} if (J >= 1 and n_resample > 0) else {}
    i, levels = n_steps, [n_steps]
    while i > 0:
        i -= 1
        levels.append(i)
        if jumps.get(i, 0) > 0:
            jumps[i] -= 1
            i += J
            levels.append(i)
    return levels


def repaint_nfe(n_steps: int, jump_length: int = 10, n_resample: int = 1) -> int:
    """Network evaluations of the jump schedule: N + floor(N/J) * n_resample * J."""
    if jump_length < 1 or n_resample <= 0:
        return n_steps
    return n_steps + (n_steps // jump_length) * n_resample * jump_length


class Inpainting:
    """Observation conditioning by masked replacement; use ``hook`` with any sampler, or ``sample``
    to run a sampler on the resampling schedule."""

    def __init__(self, scheduler: NoiseScheduler, x_tilde: Tensor, hard_mask: Tensor, sigma_g: float = 1.5,
                 jump_length: int = 10, n_resample: int = 1, generator: torch.Generator | None = None,
                 weight: float | Tensor = 1.0, error_var: float | Tensor | None = None):
        self.scheduler, self.x_tilde = scheduler, x_tilde
        self.sigma_g, self.jump_length, self.n_resample = float(sigma_g), int(jump_length), int(n_resample)
        # ``weight`` (<= 1, broadcast over the mask) trusts the known field less than fully, e.g. by the
        # background's share of the innovation variance when the observations are noisy
        self.error_var = None if error_var is None else torch.as_tensor(error_var, dtype=x_tilde.dtype)
        if self.error_var is None:
            self.mask = soft_mask(hard_mask.to(x_tilde.dtype), self.sigma_g) * weight
        else:  # noise-level matched: the observed cells only, each with its own threshold
            self.mask = hard_mask.to(x_tilde.dtype).clamp(0.0, 1.0)
        self.generator = generator

    def hook(self, x: Tensor, t_prev: float, t: float, x0_hat: Tensor) -> Tensor:
        """x_s <- m q_sample(x_tilde, s, z) + (1 - m) x_s, with fresh z (noise-matched with ``error_var``)."""
        a, s = self.scheduler.coefficients(t_prev, x)
        z = gaussian_like(x, self.generator)
        m = self.mask.to(x.dtype)
        if self.error_var is None:
            return m * (a * self.x_tilde + s * z) + (1.0 - m) * x
        extra = s**2 - a**2 * self.error_var.to(x.device, x.dtype)
        known = a * self.x_tilde + extra.clamp_min(0.0).sqrt() * z
        m = torch.where(extra >= 0, m, torch.zeros_like(m))
        return m * known + (1.0 - m) * x

    __call__ = hook

    def nfe(self, n_steps: int) -> int:
        return repaint_nfe(n_steps, self.jump_length, self.n_resample)

    def times(self, sampler: Sampler, n_steps: int | None = None) -> list[float]:
        """The sampler's uniform grid visited along the jump schedule (times, up and down)."""
        n = sampler.n_steps if n_steps is None else int(n_steps)
        ascending = sampler.timesteps(n).flip(0).tolist()
        return [ascending[i] for i in repaint_schedule(n, self.jump_length, self.n_resample)]

    def sample(self, sampler: Sampler, denoise_fn, shape_or_x, n_steps: int | None = None,
               generator: torch.Generator | None = None, hook: Hook | None = None) -> SampleOutput:
        """Run ``sampler`` with resampling; an extra ``hook`` (e.g. guidance) runs before the replacement."""
        if generator is not None:
            self.generator = generator
        return sampler.sample(denoise_fn, shape_or_x, self.times(sampler, n_steps), self.generator,
                              compose_hooks(hook, self.hook), dtype=self.x_tilde.dtype, device=self.x_tilde.device)
