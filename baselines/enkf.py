"""EnKF: the deterministic square-root ensemble transform Kalman filter (ETKF).

Square-root (ETKF, symmetric transform: Bishop et al. 2001, Hunt et al.
2007) rather than perturbed observations: it is the "EnKF-Sqrt" of Sakov &
Oke (2008), whose L96 benchmark (N = 24 members, inflation 1.013 with random
rotations) reaches an analysis RMSE of 0.18. No localisation (40 variables,
24 members), no rotations.

Each cycle: anomalies A = X - xm are inflated multiplicatively, A <- rho A
(covariance by rho²; the convention of Sakov's and DAPPER's ``infl``), then
the global ETKF update (``baselines.ensemble_tools.transform``) gives
Xa = xm + A^T (w + W). H is the selection of observed variables and R is
diagonal, so Y = H A and R^-1 are applied as masks.

Cold start (cycle 0, no ensemble yet): M draws from the Gaussian posterior
with the climatological prior (``ensemble_tools.cold_start``), B the
covariance of training states.
Inflation tuned on the VAL split: every grid value cycled at once (trials x
trajectories in one batch), the lowest time-mean analysis RMSE after the
challenge's burn-in wins. Batched over experiments and members; float64.
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from challenges import cycling
from challenges.l96_cycle import L96_CYCLING

from .base import Method
from .case_tensors import read_case
from .covariance import StateCovariance
from .ensemble_tools import cold_start, transform


def etkf_analysis(X: torch.Tensor, y: torch.Tensor, rinv: torch.Tensor, infl: torch.Tensor) -> torch.Tensor:
    """Global ETKF: ensemble X (B, M, n), y and rinv (B, n), inflation (B,) -> analysis ensemble (B, M, n)."""
    xm = X.mean(1)
    A = (X - xm[:, None]) * infl[:, None, None]
    C = torch.einsum("bmi,bi,bki->bmk", A, rinv, A)
    q = torch.einsum("bmi,bi->bm", A, rinv * (y - xm))
    w, W = transform(C, q)
    return xm[:, None] + torch.einsum("bmi,bmk->bki", A, W + w[..., None])


class EnKF(Method):
    name = "enkf"
    summary = "ETKF (square-root EnKF, Sakov & Oke 2008), 24 members, multiplicative inflation tuned on val"
    applies_to = L96_CYCLING
    reference = "Sakov & Oke (2008, Tellus A); Hunt et al. (2007, Physica D)"
    n_members = 24
    grid = np.array([1.0, 1.005, 1.01, 1.015, 1.02, 1.03, 1.04, 1.06, 1.08])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cov = None
        self.inflation = 1.0
        self.tuning = {}

    def fit(self, train: xr.Dataset, val: xr.Dataset) -> None:
        self.cov = StateCovariance.from_samples(train.x.values.reshape(-1, train.sizes["i"])).to(self.device)
        self.inflation = xr.DataArray(self.grid, dims="trial")
        scores = cycling.trial_rmse(self.predict, self.challenge.problem(val), len(self.grid),
                                    self.challenge.burn_in[self.size])
        self.inflation = float(self.grid[int(np.argmin(scores))])
        self.tuning = {"grid": self.grid.tolist(), "val_rmse": scores.tolist()}

    def predict(self, case: xr.Dataset) -> xr.Dataset:
        g = read_case(case, self.challenge.state_dims, self.device)
        if not g.ensemble:
            return g.dataset(cold_start(g, self.n_members, self.cov, self.seed))
        return g.dataset(etkf_analysis(g.xb, g.y, g.rinv, g.param(self.inflation)))

    def describe(self) -> dict:
        return {"scheme": "ETKF, symmetric square root, no rotation, no localisation", "members": self.n_members,
                "inflation": self.inflation, "inflation_convention": "anomalies multiplied by inflation",
                "cold_start": "draws from the posterior with the climatological prior (training covariance)",
                "tuning (val)": self.tuning}
