"""``backscatter``: biharmonic Smagorinsky dissipation with energy backscatter (Jansen & Held 2014).

For a two-layer (QG) flow on a doubly periodic grid, psi from the coarse
model's inversion and nu the Smagorinsky viscosity (``smagorinsky``, constant
Cs):

    D = -lap( dx^2 nu lap^2 psi )                              (biharmonic dissipation)
    B = -C_b lap^2 psi * sum_i H_i <psi_i D_i> / sum_i H_i <psi_i lap^2 psi_i>
    S = D + B

B is a negative Laplacian-squared viscosity scaled so that it returns the
fraction C_b of the energy D removes (a domain-mean, depth-weighted energy
budget; <.> the domain mean). Defaults Cs = 0.08, C_b = 0.99 (pyqg's and Ross
et al. 2023's values); both are tuned on the val split (a coordinate search from
the defaults) by ``objective``, as ``smagorinsky``: the long-run similarity
(default) or the short-range online error.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from .base import Supports
from .core import tuning
from .core.closure import ClosureMethod, TunedClosureConfig, closure_loss
from .smagorinsky import strain_viscosity

torch = lazy.load("torch")


@dataclass
class BackscatterConfig(TunedClosureConfig):
    smag_constant: float = 0.08
    back_constant: float = 0.99
    smag_grid: tuple = (0.04, 0.06, 0.08, 0.1, 0.15)
    back_grid: tuple = (0.3, 0.5, 0.7, 0.85, 0.95, 0.99)


def backscatter_forcing(model, q, smag_constant: float, back_constant: float, eps: float = 1e-32):
    qh = torch.fft.rfft2(q)
    ph = model.invert_h(qh)
    shape = (model.ny, model.nx)
    lap = -(model.k.to(ph.real.dtype)[None, :] ** 2 + model.l.to(ph.real.dtype)[:, None] ** 2)
    psi = torch.fft.irfft2(ph, s=shape)
    lap2psi = torch.fft.irfft2(lap ** 2 * ph, s=shape)
    nu, _, _, _ = strain_viscosity(model, ph, smag_constant)
    D = -torch.fft.irfft2(lap * torch.fft.rfft2(lap2psi * model.dx ** 2 * nu), s=shape)
    H = model.Hi.to(q)[None, :]
    num = (H * (psi * D).mean((-2, -1))).sum(-1)
    den = (H * (psi * lap2psi).mean((-2, -1))).sum(-1) + eps
    return D - back_constant * lap2psi * (num / den)[:, None, None, None]


class Backscatter(ClosureMethod):
    name = "backscatter"
    summary = "biharmonic Smagorinsky dissipation + energy backscatter (Jansen & Held 2014), Cs and C_b tuned on val"
    supports = Supports(families=("closure",), geometries=("periodic2d",), observes=("none",))
    Config = BackscatterConfig
    reference = "Jansen & Held (2014); Jansen et al. (2015); Ross et al. (2023, JAMES)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.back_constant = self.config.back_constant
        self.smag_constant = self.config.smag_constant

    def fit(self, train, val) -> None:
        c = self.config

        def evaluate(p):
            self.smag_constant, self.back_constant = p["smag_constant"], p["back_constant"]
            return closure_loss(val, self.closure(val.model), c.objective)

        self.tuning = tuning.coordinate(evaluate, {"smag_constant": c.smag_constant, "back_constant": c.back_constant},
                                        {"smag_constant": c.smag_grid, "back_constant": c.back_grid},
                                        label="backscatter", sweeps=1, progress=self.progress)
        self.smag_constant = self.tuning["best"]["smag_constant"]
        self.back_constant = self.tuning["best"]["back_constant"]

    def forcing(self, x, model):
        return backscatter_forcing(model, x.to(torch.float64), self.smag_constant, self.back_constant)

    def describe(self) -> dict:
        return {"smag_constant": self.smag_constant, "back_constant": self.back_constant}
