"""The network as a denoiser: ``denoise_fn(x_t, t) -> (x0_hat, eps_hat)``.

The network sees ``cat([x_t, cond], dim=1)`` (cond: e.g. the background, for a
model of the analysis increment given the background; None for an
unconditional prior) and the time t, a (B,) tensor in [0, 1]; the
parameterisation turns its output into (x0_hat, eps_hat). Samplers, inpainting
and guidance only ever see ``denoise_fn``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .parameterization import Parameterization
from .scheduler import NoiseScheduler

__all__ = ["DenoiseFn", "Denoiser", "model_input"]

DenoiseFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def model_input(x_t: Tensor, cond: Tensor | None) -> Tensor:
    """cat([x_t, cond], 1); a cond of batch 1 is expanded to x_t's batch (one background, many samples)."""
    if cond is None:
        return x_t
    if cond.shape[0] != x_t.shape[0]:
        if cond.shape[0] != 1:
            raise ValueError(f"cond batch {cond.shape[0]} does not match x_t batch {x_t.shape[0]}")
        cond = cond.expand(x_t.shape[0], *cond.shape[1:])
    return torch.cat([x_t, cond.to(x_t.dtype)], dim=1)


class Denoiser:
    """Wrap ``model(x, t) -> out`` (out of x_t's shape) as a ``denoise_fn``.

    The model sees at most ``chunk`` samples at a time (None: the whole batch). An ensemble
    of every test case is thousands of samples: on a CPU one large batch runs the U-Net at
    about half the per-sample speed of batches of 32 (``benchmarks/diffda_batch.py``), and a
    convolution's output for one sample does not depend on the others in its batch, so the
    result is the same."""

    def __init__(self, model: Callable[[Tensor, Tensor], Tensor], param: Parameterization,
                 scheduler: NoiseScheduler, cond: Tensor | None = None, chunk: int | None = 32):
        self.model, self.param, self.scheduler, self.cond = model, param, scheduler, cond
        self.chunk = chunk

    def __call__(self, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        x = model_input(x_t, self.cond)
        c = x.shape[0] if not self.chunk else int(self.chunk)
        out = torch.cat([self.model(x[i:i + c], t[i:i + c]) for i in range(0, x.shape[0], c)])
        return self.param.to_x0_eps(out, x_t, t, self.scheduler)
