"""Parameterisations: what the network predicts, and how to get (x0_hat, eps_hat) back.

With x_t = alpha x0 + sigma eps (alpha^2 + sigma^2 = 1):

* ``eps`` (Ho et al. 2020): target eps;  x0 = (x_t - sigma eps) / alpha.
* ``x0``: target x0;                     eps = (x_t - alpha x0) / sigma.
* ``v`` (Salimans & Ho 2022): target v = alpha eps - sigma x0;
  x0 = alpha x_t - sigma v,  eps = sigma x_t + alpha v  (a rotation: exact and
  well conditioned at every noise level).

Each also says how an error in its own output maps to errors in x0 and eps at
fixed x_t (used by the loss weightings), with snr = exp(log_snr) = alpha^2/sigma^2::

    |x0 - x0_hat|^2 = x0_factor * |out - target|^2,   eps_factor = snr * x0_factor
    eps: x0_factor = 1/snr     x0: x0_factor = 1     v: x0_factor = sigma^2 = 1/(1 + snr)
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from .scheduler import NoiseScheduler

__all__ = ["PARAMETERIZATIONS", "EpsParam", "Parameterization", "VParam", "X0Param", "get_parameterization"]


class Parameterization(ABC):
    """Interface: ``target`` for training, ``to_x0_eps`` for sampling, error factors for weighting."""

    name: str = ""

    @abstractmethod
    def target(self, x0: Tensor, eps: Tensor, t: Tensor, scheduler: NoiseScheduler) -> Tensor:
        """What the network should output for x_t = q_sample(x0, t, eps)."""

    @abstractmethod
    def to_x0_eps(self, out: Tensor, x_t: Tensor, t: Tensor, scheduler: NoiseScheduler) -> tuple[Tensor, Tensor]:
        """(x0_hat, eps_hat) from the network output at (x_t, t)."""

    @abstractmethod
    def x0_factor(self, log_snr: Tensor) -> Tensor:
        """|x0 - x0_hat|^2 per unit squared error of the network output."""

    def eps_factor(self, log_snr: Tensor) -> Tensor:
        """|eps - eps_hat|^2 per unit squared error of the network output (= snr * x0_factor)."""
        return torch.exp(log_snr) * self.x0_factor(log_snr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EpsParam(Parameterization):
    name = "eps"

    def target(self, x0, eps, t, scheduler):
        return eps

    def to_x0_eps(self, out, x_t, t, scheduler):
        a, s = scheduler.coefficients(t, x_t)
        return (x_t - s * out) / a, out

    def x0_factor(self, log_snr):
        return torch.exp(-log_snr)

    def eps_factor(self, log_snr):
        return torch.ones_like(log_snr)


class X0Param(Parameterization):
    name = "x0"

    def target(self, x0, eps, t, scheduler):
        return x0

    def to_x0_eps(self, out, x_t, t, scheduler):
        a, s = scheduler.coefficients(t, x_t)
        return out, (x_t - a * out) / s

    def x0_factor(self, log_snr):
        return torch.ones_like(log_snr)


class VParam(Parameterization):
    name = "v"

    def target(self, x0, eps, t, scheduler):
        a, s = scheduler.coefficients(t, x0)
        return a * eps - s * x0

    def to_x0_eps(self, out, x_t, t, scheduler):
        a, s = scheduler.coefficients(t, x_t)
        return a * x_t - s * out, s * x_t + a * out

    def x0_factor(self, log_snr):
        return torch.sigmoid(-log_snr)  # sigma^2

    def eps_factor(self, log_snr):
        return torch.sigmoid(log_snr)  # alpha^2


PARAMETERIZATIONS: dict[str, type[Parameterization]] = {"eps": EpsParam, "v": VParam, "x0": X0Param}


def get_parameterization(name: str) -> Parameterization:
    """Parameterisation by name ("eps", "v", "x0")."""
    try:
        return PARAMETERIZATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown parameterization {name!r}; choose from {sorted(PARAMETERIZATIONS)}") from None
