"""``polynomial``: Wilks (2005) closure: a cubic polynomial of the local slow variable, optionally with AR(1) noise.

S_k = b0 + b1 X_k + b2 X_k^2 + b3 X_k^3, the same coefficients for every k
(the ring is homogeneous), fitted by least squares to the (X, S) pairs of the
train split. ``stochastic=true`` adds Wilks' red noise: e_k(t + dt) =
phi e_k(t) + sigma_e sqrt(1 - phi^2) z, z ~ N(0, 1), with sigma_e the std of
the fit's residuals and phi their lag-1 autocorrelation at the snapshot
spacing, scaled to the model's step (phi^(dt / dt_snapshot)); the noise is
advanced once per model step and is the same at every Runge-Kutta stage of a
step. Online, each run keeps its own noise (seeded).
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from .base import Config, Supports
from .core.closure import ClosureMethod

torch = lazy.load("torch")


@dataclass
class PolynomialConfig(Config):
    degree: int = 3
    stochastic: bool = False


class _RedNoise:
    """A polynomial closure with AR(1) noise per variable; ``advance(dt)`` draws the next noise."""

    def __init__(self, coef, phi: float, sigma: float, snapshot_dt: float, seed: int):
        self.coef, self.phi, self.sigma, self.snapshot_dt = coef, phi, sigma, snapshot_dt
        self.gen = torch.Generator().manual_seed(int(seed))
        self.e = None

    def __call__(self, x):
        if self.e is None or self.e.shape != x.shape:
            self.e = self.sigma * torch.randn(x.shape, generator=self.gen, dtype=torch.float64)
        return _poly(self.coef, x) + self.e.to(x)

    def advance(self, dt: float):
        if self.e is None:
            return
        phi = self.phi ** (dt / self.snapshot_dt)
        z = torch.randn(self.e.shape, generator=self.gen, dtype=torch.float64)
        self.e = phi * self.e + self.sigma * np.sqrt(1.0 - phi ** 2) * z


def _poly(coef, x):
    out = torch.zeros_like(x)
    for c in reversed(coef):
        out = out * x + float(c)
    return out


class Polynomial(ClosureMethod):
    name = "polynomial"
    summary = "Wilks (2005) cubic in the local slow variable, least squares on train; optional AR(1) noise"
    supports = Supports(families=("closure",), geometries=("ring",), observes=("none",))
    Config = PolynomialConfig
    reference = "Wilks (2005, QJRMS); Arnold et al. (2013)"

    def fit(self, train, val) -> None:
        X, S = train.states().ravel(), train.forcings().ravel()
        V = np.vander(X, self.config.degree + 1, increasing=True)
        self.coef, *_ = np.linalg.lstsq(V, S, rcond=None)
        resid = (S - V @ self.coef).reshape(train.trajectories().shape)
        self.sigma = float(resid.std())
        self.phi = float(np.mean(resid[:, 1:] * resid[:, :-1]) / np.mean(resid ** 2))
        self.snapshot_dt = train.model.dt * train.steps_per_snapshot

    def forcing(self, x, model):
        return _poly(self.coef, x.to(torch.float64))

    def closure(self, model):
        if not self.config.stochastic:
            return lambda x: self.forcing(x, model)
        return _RedNoise(self.coef, self.phi, self.sigma, self.snapshot_dt, self.seed)

    def describe(self) -> dict:
        return {"coefficients": [float(c) for c in self.coef], "residual_std": self.sigma, "residual_lag1": self.phi,
                "stochastic": self.config.stochastic}
