"""3D-Var: variational analysis with a static B, minimised in control space.

    x = xb + U v,   U = sqrt(s) B^{1/2}
    J(v) = 1/2 |v|² + 1/2 (y - H(xb + U v))^T R^-1 (y - H(xb + U v))

H selects the observed variables and R is diagonal, so J is quadratic; its
minimiser solves (I + U^T H^T R^-1 H U) v = U^T H^T R^-1 (y - H xb), which
is solved by batched conjugate gradients (``baselines.krylov.cg``) to a
relative residual of 1e-8 (at most n iterations): a real iterative
minimisation, not the closed-form Kalman update.

B (estimated on the TRAIN split only):

- cycling (``l96-cycle``): the climatological covariance of training states,
  as in DAPPER's ``Var3D`` for the Sakov & Oke (2008) benchmark (whose tuned
  scale xB = 0.02 gives RMSE 0.41);
- one-step (``l96-da``, ``l96-fc48``): the covariance of the training cases'
  background errors (background - truth), the best static B for that
  background (the "NMC" idea with the true errors, available because the
  training split has the truth).

The scale s is tuned on the VAL split by a grid search (log-spaced): for
cycling, every trial value is cycled over the whole val split at once (one
batched run, trials x trajectories) and scored by time-mean analysis RMSE
after the challenge's burn-in; for one-step DA by the val analysis RMSE.
Batched over experiments/cases; float64; runs on ``self.device``.
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from challenges import cycling
from challenges.l96_cycle import L96_CYCLING
from challenges.qg_cycle import QG_CYCLING

from .base import Method
from .case_tensors import read_case
from .covariance import StateCovariance
from .krylov import cg


def var3d_analysis(xb: torch.Tensor, y: torch.Tensor, rinv: torch.Tensor, B, scale: torch.Tensor,
                   tol: float = 1e-8, maxiter: int | None = None) -> tuple[torch.Tensor, int]:
    """Batched 3D-Var analysis: xb, y, rinv (B, n) (y zero and rinv zero where unobserved), scale (B,).

    ``B`` offers ``sqrt_apply`` / ``sqrt_apply_T`` (``baselines.covariance``). Returns the
    analysis (B, n) and the number of CG iterations.
    """
    s = scale.sqrt()[:, None]

    def U(v):
        return s * B.sqrt_apply(v)

    def UT(x):
        return s * B.sqrt_apply_T(x)

    b = UT(rinv * (y - xb))
    v, it, _ = cg(lambda p: p + UT(rinv * U(p)), b, tol=tol, maxiter=maxiter)
    return xb + U(v), it


class Var3D(Method):
    name = "3dvar"
    summary = "3D-Var, static B from training, control variable x = xb + B^1/2 v, CG minimisation"
    applies_to = (*L96_CYCLING, "l96-da", "l96-fc48",
                  # QG (baselines/qg_var3d.py): spectral multivariate B, exact SSH operator
                  "qg-da", "qg-da-sparse", "qg-da-dense", "qg-fc48", *QG_CYCLING)
    qg_tol = 1e-6
    reference = "Sakov & Oke (2008); DAPPER Var3D; Courtier et al. (1998, QJRMS)"
    tol = 1e-8
    cycling_grid = np.geomspace(0.005, 0.2, 11)
    one_step_grid = np.geomspace(0.25, 4.0, 9)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.B = None
        self.scale = 1.0
        self.b_source = ""
        self.tuning = {}
        self._iters = []

    def fit(self, train: xr.Dataset, val: xr.Dataset) -> None:
        if getattr(self.challenge, "world", None) == "qg":  # QG: baselines/qg_var3d.py
            from . import qg_var3d

            return qg_var3d.fit(self, train, val)
        n = train.sizes["i"]
        if "x_true" in train:
            first = train.density.values == train.density.values[0]
            err = (train.background - train.x_true).values[first]
            self.B = StateCovariance.from_samples(err.reshape(-1, n)).to(self.device)
            self.b_source = f"covariance of {len(err)} training background errors (background - truth)"
            scores = self._tune_one_step(val, self.one_step_grid)
            grid = self.one_step_grid
        else:
            self.B = StateCovariance.from_samples(train.x.values.reshape(-1, n)).to(self.device)
            self.b_source = f"climatological covariance of {train.sizes['traj'] * train.sizes['time']} training states"
            grid = self.cycling_grid
            self.scale = xr.DataArray(grid, dims="trial")
            scores = cycling.trial_rmse(self.predict, self.challenge.problem(val), len(grid),
                                        self.challenge.burn_in[self.size])
        self.scale = float(grid[int(np.argmin(scores))])
        self.tuning = {"grid": grid.tolist(), "val_rmse": scores.tolist()}
        self._iters = []

    def _tune_one_step(self, val: xr.Dataset, grid: np.ndarray) -> np.ndarray:
        self.scale = xr.DataArray(grid, dims="trial")
        trials = val.assign(background=val.background.expand_dims(trial=len(grid)))
        xa = self.predict(trials.drop_vars("x_true"))["x"]
        return np.sqrt(((xa - val.x_true) ** 2).mean(["case", "i"])).values

    def predict(self, case: xr.Dataset) -> xr.Dataset:
        if getattr(self.challenge, "world", None) == "qg":  # QG: baselines/qg_var3d.py
            from . import qg_var3d

            return qg_var3d.predict(self, case)
        g = read_case(case, self.challenge.state_dims, self.device)
        xa, it = var3d_analysis(g.xb, g.y, g.rinv, self.B, g.param(self.scale), tol=self.tol)
        self._iters.append(it)
        return g.dataset(xa)

    def describe(self) -> dict:
        tol = self.qg_tol if getattr(self.challenge, "world", None) == "qg" else self.tol
        return {"B": self.b_source, "scale": self.scale, "solver": f"CG on the control-space Hessian, "
                f"relative residual {tol:g}", "mean_cg_iterations": float(np.mean(self._iters)) if self._iters
                else None, "tuning (val)": self.tuning}
