"""Loss weightings w(t) over noise levels, applied to the parameterisation's own MSE.

The loss is E_t[ w(t) |out - target|^2 ]. Weightings are expressed through
the parameterisation's error factors (see ``parameterization``), snr = alpha^2/sigma^2:

* ``uniform``: w = 1, the "simple" loss in the parameterisation's own space
  (eps: Ho et al. 2020; v: Salimans & Ho 2022; x0: plain regression).
* ``eps-equivalent``: w = eps_factor, so that every parameterisation weighs noise
  levels exactly like the simple eps loss: w |out - target|^2 = |eps - eps_hat|^2
  (w = 1 for eps, alpha^2 for v, snr for x0, which is unbounded as t -> 0).
* ``min-snr`` (Hang et al. 2023): x0-space weight min(snr, gamma), i.e.
  w = min(snr, gamma) * x0_factor (eps: min(1, gamma/snr); v: min(snr, gamma)/(snr + 1)).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from .parameterization import Parameterization
from .scheduler import NoiseScheduler

__all__ = ["WEIGHTINGS", "EpsEquivalentWeighting", "MinSNRWeighting", "UniformWeighting", "Weighting", "get_weighting"]


class Weighting(ABC):
    """Interface: ``w = weighting(t, scheduler, param)``, same shape as t."""

    @abstractmethod
    def __call__(self, t: Tensor, scheduler: NoiseScheduler, param: Parameterization) -> Tensor: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class UniformWeighting(Weighting):
    def __call__(self, t, scheduler, param):
        return torch.ones_like(torch.as_tensor(t, dtype=torch.float64)).to(_dtype(t))


class EpsEquivalentWeighting(Weighting):
    def __call__(self, t, scheduler, param):
        return param.eps_factor(scheduler.log_snr(t))


class MinSNRWeighting(Weighting):
    def __init__(self, gamma: float = 5.0):
        self.gamma = float(gamma)

    def __call__(self, t, scheduler, param):
        lam = scheduler.log_snr(t)
        return torch.exp(lam.clamp(max=math.log(self.gamma))) * param.x0_factor(lam)

    def __repr__(self) -> str:
        return f"MinSNRWeighting(gamma={self.gamma})"


def _dtype(t) -> torch.dtype:
    return t.dtype if isinstance(t, Tensor) and t.is_floating_point() else torch.float64


WEIGHTINGS: dict[str, type[Weighting]] = {
    "uniform": UniformWeighting,
    "eps-equivalent": EpsEquivalentWeighting,
    "min-snr": MinSNRWeighting,
}


def get_weighting(name: str, **kwargs) -> Weighting:
    """Weighting by name ("uniform", "eps-equivalent", "min-snr" with gamma=5)."""
    key = name.lower().replace("_", "-")
    try:
        return WEIGHTINGS[key](**kwargs)
    except KeyError:
        raise ValueError(f"unknown weighting {name!r}; choose from {sorted(WEIGHTINGS)}") from None
