"""Denoising training loss.

For x0 ~ data, t ~ U over the training grid, eps ~ N(0, I),
x_t = alpha_t x0 + sigma_t eps::

    L = mean_b  w(t_b) * mean_{c,space} (model(cat[x_t, cond], t)_b - target_b)^2

with target and w given by the parameterisation and the weighting. t is
drawn on the scheduler's discrete grid t = k/T, k uniform in 1..T (or
continuous in (0, 1] when ``scheduler.T is None``); ``stratified=True`` draws
one t per batch stratum ((b + u_b)/B), which lowers the variance of the
loss without changing its expectation.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .denoiser import model_input
from .parameterization import Parameterization
from .scheduler import NoiseScheduler
from .weighting import Weighting

__all__ = ["diffusion_loss", "sample_times"]


def sample_times(batch: int, scheduler: NoiseScheduler, generator: torch.Generator | None = None,
                 stratified: bool = False, device=None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(batch,) training times: k/T with k in 1..T (discrete) or in (0, 1] (continuous)."""
    gdev = generator.device if generator is not None else device
    u = torch.rand(batch, generator=generator, device=gdev, dtype=torch.float64)
    if stratified:
        u = (torch.arange(batch, device=gdev, dtype=torch.float64) + u) / batch
    if scheduler.T is not None:
        t = ((u * scheduler.T).floor().clamp(max=scheduler.T - 1) + 1.0) / scheduler.T
    else:
        t = 1.0 - u
    return t.to(device=device, dtype=dtype)


def diffusion_loss(model: Callable[[Tensor, Tensor], Tensor], x0: Tensor, cond: Tensor | None,
                   scheduler: NoiseScheduler, param: Parameterization, weighting: Weighting,
                   generator: torch.Generator | None = None, *, stratified: bool = False,
                   t: Tensor | None = None) -> Tensor:
    """Weighted MSE of ``model(cat([x_t, cond], 1), t)`` against the parameterisation's target.

    ``t`` may be given (B,) to evaluate the loss at fixed noise levels."""
    B = x0.shape[0]
    if t is None:
        t = sample_times(B, scheduler, generator, stratified, device=x0.device, dtype=x0.dtype)
    gdev = generator.device if generator is not None else x0.device
    eps = torch.randn(x0.shape, generator=generator, device=gdev, dtype=x0.dtype).to(x0.device)
    x_t = scheduler.q_sample(x0, t, eps)
    out = model(model_input(x_t, cond), t)
    if out.shape != x0.shape:
        raise ValueError(f"model output {tuple(out.shape)} does not match x0 {tuple(x0.shape)}")
    target = param.target(x0, eps, t, scheduler)
    mse = (out - target).pow(2).reshape(B, -1).mean(1)
    w = weighting(t, scheduler, param).to(mse.dtype)
    return (w * mse).mean()
