"""Swappable parts of a conditional denoising diffusion model for data assimilation (DiffDA-style).

One concept per module, pure torch, fields (B, C, *spatial) with 1 or 2 spatial dims:

* ``scheduler``: noise schedules alpha_bar(t), t in [0, 1] (linear, cosine);
* ``parameterization``: what the network predicts (eps, v, x0);
* ``weighting``: loss weights over noise levels (uniform, eps-equivalent, min-snr);
* ``denoiser``: network -> ``denoise_fn(x_t, t) -> (x0_hat, eps_hat)``;
* ``loss``: the weighted denoising loss;
* ``sampler``: DDPM and DDIM on a subsequence of steps, with a per-step hook;
* ``inpainting``: RePaint replacement with a soft (blurred) mask and resampling;
* ``guidance``: DPS likelihood-score guidance;
* ``config``: the defaults and their wiring (``DiffusionConfig().build()``).

The model is trained on (increment, background) pairs with
``diffusion_loss(model, x0=increment, cond=background, ...)``; observations
enter only at sampling time.
"""
from __future__ import annotations

from .config import GUIDANCE_MODES, DiffusionConfig, DiffusionParts
from .denoiser import DenoiseFn, Denoiser, model_input
from .guidance import LikelihoodGuidance
from .inpainting import (
    Inpainting,
    hard_mask_from_indices,
    periodic_blur,
    periodic_gaussian_kernel,
    repaint_nfe,
    repaint_schedule,
    soft_mask,
)
from .loss import diffusion_loss, sample_times
from .parameterization import (
    PARAMETERIZATIONS,
    EpsParam,
    Parameterization,
    VParam,
    X0Param,
    get_parameterization,
)
from .sampler import (
    SAMPLERS,
    DDIMSampler,
    DDPMSampler,
    Hook,
    SampleOutput,
    Sampler,
    compose_hooks,
    gaussian_like,
    get_sampler,
    uniform_timesteps,
)
from .scheduler import (
    SCHEDULERS,
    CosineScheduler,
    LinearScheduler,
    NoiseScheduler,
    broadcast_like,
    get_scheduler,
)
from .weighting import (
    WEIGHTINGS,
    EpsEquivalentWeighting,
    MinSNRWeighting,
    UniformWeighting,
    Weighting,
    get_weighting,
)

__all__ = [
    "GUIDANCE_MODES",
    "PARAMETERIZATIONS",
    "SAMPLERS",
    "SCHEDULERS",
    "WEIGHTINGS",
    "CosineScheduler",
    "DDIMSampler",
    "DDPMSampler",
    "DenoiseFn",
    "Denoiser",
    "DiffusionConfig",
    "DiffusionParts",
    "EpsEquivalentWeighting",
    "EpsParam",
    "Hook",
    "Inpainting",
    "LikelihoodGuidance",
    "LinearScheduler",
    "MinSNRWeighting",
    "NoiseScheduler",
    "Parameterization",
    "SampleOutput",
    "Sampler",
    "UniformWeighting",
    "VParam",
    "Weighting",
    "X0Param",
    "broadcast_like",
    "compose_hooks",
    "diffusion_loss",
    "gaussian_like",
    "get_parameterization",
    "get_sampler",
    "get_scheduler",
    "get_weighting",
    "hard_mask_from_indices",
    "model_input",
    "periodic_blur",
    "periodic_gaussian_kernel",
    "repaint_nfe",
    "repaint_schedule",
    "sample_times",
    "soft_mask",
    "uniform_timesteps",
]
