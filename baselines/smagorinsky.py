"""``smagorinsky``: Smagorinsky (1963) eddy viscosity on the coarse velocities, as a PV forcing.

For each layer of a two-dimensional (QG) flow on a doubly periodic grid, with
u = -dpsi/dy, v = dpsi/dx from the coarse model's inversion:

    nu = (Cs dx)^2 sqrt(2 (Sxx^2 + Syy^2 + 2 Sxy^2)),  Sxx = du/dx, Syy = dv/dy, Sxy = (du/dy + dv/dx)/2
    (Fu, Fv) = 2 (d/dx(nu Sxx) + d/dy(nu Sxy), d/dx(nu Sxy) + d/dy(nu Syy))
    S = dFv/dx - dFu/dy      (the PV tendency of the velocity forcing: its curl)

Derivatives are spectral (the model's wavenumbers). Cs is tuned on the val
split, from the published 0.15, by ``objective``: ``long`` (default) the
long-run similarity of the coarse model run with the closure
(``Split.long_run_loss``: the statistics a closure is judged on), ``short`` the
short-range online error (``Split.evaluate``: over 5 days it barely depends on
Cs). A purely dissipative closure: it removes energy at the grid scale, where
the truth's backscatter puts it back (Ross et al. 2023 find a similarity of
about -0.9 on eddy at 64^2; docs/challenges.md says why it helps at 32^2).
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from .base import Supports
from .core import tuning
from .core.closure import ClosureMethod, TunedClosureConfig, closure_loss

torch = lazy.load("torch")


@dataclass
class SmagorinskyConfig(TunedClosureConfig):
    constant: float = 0.15
    grid: tuple = (0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)


def strain_viscosity(model, ph, constant: float):
    """(nu, Sxx, Syy, Sxy) on the grid from the spectral streamfunction ph (B, nz, nl, nk)."""
    ik = 1j * model.k.to(ph.real.dtype)[None, :]
    il = 1j * model.l.to(ph.real.dtype)[:, None]
    shape = (model.ny, model.nx)
    uh, vh = -il * ph, ik * ph
    Sxx = torch.fft.irfft2(ik * uh, s=shape)
    Syy = torch.fft.irfft2(il * vh, s=shape)
    Sxy = 0.5 * torch.fft.irfft2(il * uh + ik * vh, s=shape)
    nu = (constant * model.dx) ** 2 * torch.sqrt(2.0 * (Sxx ** 2 + Syy ** 2 + 2.0 * Sxy ** 2))
    return nu, Sxx, Syy, Sxy


def smagorinsky_forcing(model, q, constant: float):
    """The Smagorinsky PV forcing of grid PV q (B, nz, ny, nx)."""
    ph = model.invert_h(torch.fft.rfft2(q))
    nu, Sxx, Syy, Sxy = strain_viscosity(model, ph, constant)
    ik = 1j * model.k.to(ph.real.dtype)[None, :]
    il = 1j * model.l.to(ph.real.dtype)[:, None]
    a, b, c = (torch.fft.rfft2(nu * S) for S in (Sxx, Sxy, Syy))
    fu, fv = 2.0 * (ik * a + il * b), 2.0 * (ik * b + il * c)
    return torch.fft.irfft2(ik * fv - il * fu, s=(model.ny, model.nx))


class Smagorinsky(ClosureMethod):
    name = "smagorinsky"
    summary = "Smagorinsky eddy viscosity on the coarse velocities (Cs tuned on val, from 0.15)"
    supports = Supports(families=("closure",), geometries=("periodic2d",), observes=("none",))
    Config = SmagorinskyConfig
    reference = "Smagorinsky (1963); Ross et al. (2023, JAMES)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.constant = self.config.constant

    def fit(self, train, val) -> None:
        def evaluate(p):
            self.constant = p["constant"]
            return closure_loss(val, self.closure(val.model), self.config.objective)

        self.tuning = tuning.coordinate(evaluate, {"constant": self.config.constant}, {"constant": self.config.grid},
                                        label="smagorinsky", sweeps=1, progress=self.progress)
        self.constant = self.tuning["best"]["constant"]

    def forcing(self, x, model):
        return smagorinsky_forcing(model, x.to(torch.float64), self.constant)

    def describe(self) -> dict:
        return {"constant": self.constant}
