"""LETKF in the two-layer QG world (the QG part of ``baselines.letkf.LETKF``).

State: PV q of both layers on the LR grid; M = 20 members. Observations: SSH
at off-grid positions through the challenge's exact (linear) operator, so
``H(x_m) - mean = H(x_m - mean)`` and the innovation is taken from the mean.

Local analysis (Hunt et al. 2007) at every LR grid point (both layers of a
column share the weights): observation precisions tapered with the
Gaspari–Cohn function of the periodic horizontal distance
(``baselines.localization.taper``: exp(-1/2) at the radius, zero beyond 3.48
radii), C_n = Y^T R_n^-1 Y, q_n = Y^T R_n^-1 (y - H xm), ETKF weights from one
batched eigh per point (``ensemble_tools.transform``); C_n for all points at
once as one matrix product of the tapered precisions (N x P) with the
per-observation outer products y_p y_p^T (P x M^2). Multiplicative prior
inflation of the anomalies.

Cold start (cycle 0, member-less background): members = background + the
anomalies of M training states drawn at random (seeded), centred — the
climatological spread, "ensemble initialised from training states" — then a
regular LETKF analysis.

Inflation and localisation radius are tuned jointly on the validation split
(all pairs cycled at once as one batch of trials over the first 60 / 120
days at tiny / small), lowest time-mean SSH analysis RMSE after burn-in wins.
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from challenges import qg_common as Q

from .ensemble_tools import transform
from .localization import taper
from .qg_case import read_qg_case

APPLIES = ("qg-cycle",)
N_MEMBERS = 20
INFLATION_GRID = np.array([1.0, 1.05, 1.1, 1.2, 1.35])
RADIUS_GRID_KM = np.array([60.0, 100.0, 150.0, 250.0])


def letkf_qg(g, infl: torch.Tensor, radius: torch.Tensor, max_bytes: float = 3e8) -> torch.Tensor:
    """LETKF analysis ensemble (B, M, 2, ny, nx) of a ``QGCase`` g with members."""
    X = g.xb
    B, M = X.shape[:2]
    nx = g.nx
    N = nx * nx
    xm = X.mean(1)
    A = (X - xm[:, None]) * infl[:, None, None, None, None]
    HX = g.ssh_obs(X)                         # (B, M, P)
    Hm = HX.mean(1)
    Y = (HX - Hm[:, None]) * infl[:, None, None]
    d = g.y - Hm
    rinv = 1.0 / g.sigma ** 2
    xc = torch.as_tensor(Q.grid_km(g.size), device=X.device)
    gx = xc[None, :].expand(nx, nx).reshape(-1)  # x varies fastest
    gy = xc[:, None].expand(nx, nx).reshape(-1)
    L = g.L
    out = torch.empty_like(X)
    P = Y.shape[-1]
    chunk = max(1, int(max_bytes // (8.0 * N * (P + 2 * M * M))))
    for s in range(0, B, chunk):
        sl = slice(s, s + chunk)
        dx = torch.remainder(gx[None, :, None] - g.ox[sl, None, :] + 0.5 * L, L) - 0.5 * L
        dy = torch.remainder(gy[None, :, None] - g.oy[sl, None, :] + 0.5 * L, L) - 0.5 * L
        loc = taper(torch.sqrt(dx * dx + dy * dy), radius[sl, None, None])  # (b, N, P)
        Rl = loc * rinv[sl, None, :]
        Ys = Y[sl]
        outer = torch.einsum("bmp,bkp->bpmk", Ys, Ys).reshape(Ys.shape[0], P, M * M)
        C = torch.bmm(Rl, outer).reshape(-1, N, M, M)
        q = torch.einsum("bnp,bmp->bnm", Rl * d[sl, None, :], Ys)
        w, W = transform(C, q)
        T = W + w[..., None]                                   # (b, N, M, K)
        Af = A[sl].reshape(-1, M, 2, N)
        out[sl] = (xm[sl].reshape(-1, 1, 2, N) + torch.einsum("bmln,bnmk->bkln", Af, T)).reshape(-1, M, 2, nx, nx)
    return out


def fit(method, train: xr.Dataset, val: xr.Dataset) -> None:
    from .qg_var3d import cycling_trial_scores, tuning_cycles

    q = train["q"].transpose("traj", "time", "lev", "y", "x").values.astype(np.float64)
    method.train_states = q.reshape(-1, *q.shape[2:])
    infl, rad = (a.ravel() for a in np.meshgrid(INFLATION_GRID, RADIUS_GRID_KM, indexing="ij"))
    method.inflation, method.radius = xr.DataArray(infl, dims="trial"), xr.DataArray(rad, dims="trial")
    scores = cycling_trial_scores(method, len(infl), n_cycles=tuning_cycles(method))
    best = int(np.argmin(scores))
    method.inflation, method.radius = float(infl[best]), float(rad[best])
    method.tuning = {"inflation": infl.tolist(), "radius_km": rad.tolist(), "val_rmse_ssh": scores.tolist(),
                     "val_cycles": tuning_cycles(method)}


def cold_start(method, g) -> torch.Tensor:
    """Prior ensemble (B, M, 2, ny, nx): background + centred anomalies of random training states."""
    rng = np.random.default_rng(method.seed)
    n = len(method.train_states)
    pick = np.stack([rng.choice(n, size=N_MEMBERS, replace=n < N_MEMBERS) for _ in range(g.B)])
    S = torch.as_tensor(method.train_states[pick], device=g.xb.device)
    return g.xb[:, None] + (S - S.mean(1, keepdim=True))


def predict(method, case: xr.Dataset) -> xr.Dataset:
    g = read_qg_case(case, method.device)
    if not g.ensemble:
        g.xb = cold_start(method, g)
        g.ensemble = True
    Xa = letkf_qg(g, g.param(method.inflation), g.param(method.radius))
    return g.dataset(Xa)


def describe(method) -> dict:
    return {"members": N_MEMBERS, "inflation": method.inflation, "localisation_radius_km": method.radius,
            "taper": "Gaspari-Cohn of R^-1 by horizontal periodic distance, exp(-1/2) at the radius, zero beyond "
                     "3.48 radii; both layers of a column share the weights",
            "inflation_convention": "prior anomalies multiplied by inflation",
            "cold_start": "background + centred anomalies of 20 random training states",
            "tuning (val)": getattr(method, "tuning", {})}
