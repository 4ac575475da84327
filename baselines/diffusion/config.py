"""Default configuration of the diffusion DA model, and one place that builds its parts.

Defaults (``DiffusionConfig()``) and why:

* scheduler = "cosine" (s = 0.008, alpha_bar clipped at 1e-5): spends more of
  the T steps at intermediate noise than the linear schedule, whose alpha_bar is
  already ~0 over the last third of t; better for small, smooth fields.
* T = 1000 training steps (t = k/T, k = 1..T), as in DDPM and DiffDA.
* parameterization = "v": x0_hat = alpha x_t - sigma v and eps_hat = sigma x_t +
  alpha v are exact rotations, well conditioned at all noise levels, whereas
  eps-prediction divides by alpha (x0_hat explodes near t = 1) and
  x0-prediction divides by sigma (eps_hat explodes near t = 0). Inpainting and
  guidance both use x0_hat at every step, so its conditioning matters.
* weighting = "eps-equivalent": w = alpha_t^2 on the v-MSE, which equals the
  simple eps loss of DDPM/DiffDA (same weighting of noise levels), bounded in
  (0, 1]; "min-snr" (gamma = 5) is the alternative to try first.
* sampler = "ddim", eta = 0.0, n_steps = 50: deterministic given x_T (and the
  observation noise draws), 20x fewer network evaluations than T; the spread
  of an ensemble comes from x_T and the inpainting noise.
* guidance = "inpainting" (DiffDA): observations enter only at sampling time by
  RePaint replacement with a soft mask, sigma_g = 1.5 grid cells (DiffDA's
  sigma_G), jump_length = 10, n_resample = 1, i.e. each block of 10 steps is
  redone once: NFE = 50 + 5 * 1 * 10 = 100. "dps" uses likelihood-score
  guidance instead, "inpainting+dps" both (guidance step, then replacement),
  "none" samples the (background-conditioned) prior.
* guidance_scale = 0.3, relative to R: the DPS step is 0.3 * mean(R) * grad L,
  which removes ~30 % of a point residual per step at low noise (see
  ``guidance``); above 1 it overshoots, above 2 it diverges.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from .denoiser import Denoiser
from .guidance import LikelihoodGuidance
from .inpainting import Inpainting, repaint_nfe
from .loss import diffusion_loss
from .parameterization import Parameterization, get_parameterization
from .sampler import SampleOutput, Sampler, get_sampler
from .scheduler import NoiseScheduler, get_scheduler
from .weighting import Weighting, get_weighting

__all__ = ["GUIDANCE_MODES", "DiffusionConfig", "DiffusionParts"]

GUIDANCE_MODES = ("inpainting", "dps", "inpainting+dps", "none")


@dataclass
class DiffusionConfig:
    scheduler: str = "cosine"
    parameterization: str = "v"
    weighting: str = "eps-equivalent"
    T: int = 1000
    sampler: str = "ddim"
    eta: float = 0.0
    n_steps: int = 50
    sigma_g: float = 1.5
    jump_length: int = 10
    n_resample: int = 1
    guidance: str = "inpainting"
    guidance_scale: float = 0.3
    min_snr_gamma: float = 5.0
    scheduler_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.guidance not in GUIDANCE_MODES:
            raise ValueError(f"guidance must be one of {GUIDANCE_MODES}, got {self.guidance!r}")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def build(self) -> DiffusionParts:
        """Scheduler, parameterisation, weighting and sampler as configured."""
        scheduler = get_scheduler(self.scheduler, T=self.T, **self.scheduler_kwargs)
        wkw = {"gamma": self.min_snr_gamma} if self.weighting.lower().replace("_", "-") == "min-snr" else {}
        return DiffusionParts(
            config=self,
            scheduler=scheduler,
            parameterization=get_parameterization(self.parameterization),
            weighting=get_weighting(self.weighting, **wkw),
            sampler=get_sampler(self.sampler, scheduler, n_steps=self.n_steps, eta=self.eta),
        )


@dataclass
class DiffusionParts:
    """The configured objects, plus the wiring of training and conditioned sampling."""

    config: DiffusionConfig
    scheduler: NoiseScheduler
    parameterization: Parameterization
    weighting: Weighting
    sampler: Sampler

    def loss(self, model, x0: Tensor, cond: Tensor | None, generator: torch.Generator | None = None,
             stratified: bool = False) -> Tensor:
        return diffusion_loss(model, x0, cond, self.scheduler, self.parameterization, self.weighting,
                              generator, stratified=stratified)

    def denoiser(self, model, cond: Tensor | None = None) -> Denoiser:
        return Denoiser(model, self.parameterization, self.scheduler, cond)

    def inpainting(self, x_tilde: Tensor, hard_mask: Tensor, weight: float | Tensor = 1.0,
                   error_var: float | Tensor | None = None) -> Inpainting:
        c = self.config
        return Inpainting(self.scheduler, x_tilde, hard_mask, c.sigma_g, c.jump_length, c.n_resample, weight=weight,
                          error_var=error_var)

    def guidance(self, obs_op: Callable[[Tensor], Tensor], y: Tensor, R: Tensor | float) -> LikelihoodGuidance:
        """DPS with the absolute scale guidance_scale * mean(R)."""
        R64 = torch.as_tensor(R, dtype=torch.float64)
        scale = self.config.guidance_scale * float(R64[torch.isfinite(R64)].mean())
        return LikelihoodGuidance(obs_op, y, R, scale)

    def nfe(self) -> int:
        """Network evaluations per sample under the configured guidance."""
        c = self.config
        if "inpainting" in c.guidance:
            return repaint_nfe(c.n_steps, c.jump_length, c.n_resample)
        return c.n_steps

    def sample(self, denoise_fn, shape_or_x, generator: torch.Generator | None = None, *,
               x_tilde: Tensor | None = None, hard_mask: Tensor | None = None,
               obs_op: Callable[[Tensor], Tensor] | None = None, y: Tensor | None = None,
               R: Tensor | float | None = None, mask_weight: float | Tensor = 1.0,
               error_var: float | Tensor | None = None) -> SampleOutput:
        """Sample with the configured conditioning; pass x_tilde and hard_mask for inpainting
        (and error_var, x_tilde's error variance, for noise-matched replacement), obs_op, y and R for DPS."""
        mode = self.config.guidance
        hook = None
        if "dps" in mode:
            if obs_op is None or y is None or R is None:
                raise ValueError("DPS guidance needs obs_op, y and R")
            g = self.guidance(obs_op, y, R)
            denoise_fn, hook = g.denoiser(denoise_fn), g.hook
        if "inpainting" in mode:
            if x_tilde is None or hard_mask is None:
                raise ValueError("inpainting needs x_tilde and hard_mask")
            inp = self.inpainting(x_tilde, hard_mask, mask_weight, error_var)
            return inp.sample(self.sampler, denoise_fn, shape_or_x, generator=generator, hook=hook)
        return self.sampler.sample(denoise_fn, shape_or_x, None, generator, hook)
