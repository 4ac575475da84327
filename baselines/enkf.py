"""EnKF: the deterministic square-root ensemble transform Kalman filter (ETKF).

Square-root (ETKF, symmetric transform: Bishop et al. 2001, Hunt et al.
2007) rather than perturbed observations: it is the "EnKF-Sqrt" of Sakov &
Oke (2008), whose L96 benchmark (N = 24 members, inflation 1.013 with random
rotations) reaches an analysis RMSE of 0.18. No localisation (40 variables,
24 members), no rotations.

Each cycle: anomalies A = X - xm are inflated multiplicatively, A <- rho A
(covariance by rho²; the convention of Sakov's and DAPPER's ``infl``), then
the global ETKF update (``baselines.core.ensemble_transform.transform``) gives
Xa = xm + A^T (w + W), with Y = H A and R diagonal. A global filter without
localisation: for small states (a ring).

Cold start (cycle 0, no ensemble yet): M draws from the Gaussian posterior
with the climatological prior (``ensemble_transform.posterior_draws``), B the
covariance of training states.
Inflation tuned on the VAL split: every grid value cycled at once (trials x
trajectories in one batch), the lowest time-mean analysis RMSE after the
challenge's burn-in wins. Batched over experiments and members; float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from .base import Config, Method, Supports
from .core import tuning

torch = lazy.load("torch")


@dataclass
class EnKFConfig(Config):
    members: int = 24
    inflation_grid: tuple = (1.0, 1.005, 1.01, 1.015, 1.02, 1.03, 1.04, 1.06, 1.08)


def etkf_analysis(X, y, rinv, H, infl):
    """Global ETKF: ensemble X (B, M, n), obs y and rinv (B, P), operator H, inflation (B,) -> (B, M, n)."""
    from .core.ensemble_transform import transform

    xm = X.mean(1)
    A = (X - xm[:, None]) * infl[:, None, None]
    Y = H(A)
    C = torch.einsum("bmi,bi,bki->bmk", Y, rinv, Y)
    q = torch.einsum("bmi,bi->bm", Y, rinv * (y - H(xm)))
    w, W = transform(C, q)
    return xm[:, None] + torch.einsum("bmi,bmk->bki", A, W + w[..., None])


class EnKF(Method):
    name = "enkf"
    summary = "ETKF (square-root EnKF, Sakov & Oke 2008), 24 members, multiplicative inflation tuned on val"
    supports = Supports(families=("cycling",), geometries=("ring",))
    Config = EnKFConfig
    reference = "Sakov & Oke (2008, Tellus A); Hunt et al. (2007, Physica D)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cov = None
        self.inflation = 1.0

    def fit(self, train, val) -> None:
        from .core.covariance import StateCovariance

        x = train.states()
        self.cov = StateCovariance.from_samples(x.reshape(len(x), -1)).to(self.device)
        self.tuning = tuning.batched(self, val, {"inflation": self.config.inflation_grid}, label="enkf",
                                     progress=self.progress)

    def predict(self, problem):
        from .core.ensemble_transform import posterior_draws

        rinv, y = self.rinv(problem), problem.obs.filled()
        if not problem.ensemble:
            return problem.result(posterior_draws(problem.background, y, rinv, problem.H, self.cov,
                                                  self.config.members, self.seed))
        return problem.result(etkf_analysis(problem.background, y, rinv, problem.H, problem.param(self.inflation)))

    def describe(self) -> dict:
        return {"scheme": "ETKF, symmetric square root, no rotation, no localisation", "members": self.config.members,
                "inflation": self.inflation, "inflation_convention": "anomalies multiplied by inflation",
                "cold_start": "draws from the posterior with the climatological prior (training covariance)"}
