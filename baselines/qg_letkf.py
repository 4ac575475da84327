"""LETKF in the two-layer QG world (the QG part of ``baselines.letkf.LETKF``).

State: PV q of both layers on the LR grid; M = 20 members. Observations: SSH
at off-grid positions through the observation operator of
``baselines.qg_case`` (exact evaluation of the LR SSH with the coarse-graining
filter undone, linear, so ``H(x_m) - mean = H(x_m - mean)``).

Local analysis (Hunt et al. 2007) at every LR grid point (both layers of a
column share the weights): observation precisions tapered with the
Gaspari–Cohn function of the periodic horizontal distance
(``baselines.localization.taper``: exp(-1/2) at the radius, zero beyond 3.48
radii), C_n = Y^T R_n^-1 Y, q_n = Y^T R_n^-1 (y - H xm), ETKF weights from one
batched eigh per point (``ensemble_tools.transform``); C_n for all points at
once as one matrix product of the tapered precisions (N x P) with the
per-observation outer products y_p y_p^T (P x M^2). Multiplicative prior
inflation of the anomalies.

Analysis variable: the weights of each grid point are applied to the
members' streamfunction (smooth), and the analysed streamfunction is inverted
back to PV (the domain-mean PV, invisible to psi, is kept from each prior
member). Applying localised weights to PV itself (a Laplacian of psi) puts
grid-scale noise into the analysis: on the small val split that filter
drifted and diverged within 150-250 cycles at every inflation tried, while
the psi-space filter stays stable (checked over 240 val cycles; 40 members
gave no gain over 20).

Cold start (cycle 0, member-less background): members = background + the
anomalies of M training states drawn at random (seeded), centred — the
climatological spread, "ensemble initialised from training states" — then a
regular LETKF analysis.

Inflation (1.02, 1.05, 1.1) and localisation radius (15, 25, 40, 60, 90 km;
15 km is half an LR cell at small, added when 25 km won at the grid's edge) are
tuned jointly on the validation split (all 15 pairs cycled at once as one
batch of trials over the first 60 / 150 days at tiny / small), lowest
time-mean SSH analysis RMSE after burn-in wins.
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from challenges import qg_common as Q
from challenges.qg_cycle import QG_CYCLING

from .ensemble_tools import transform
from .localization import taper
from .qg_case import read_qg_case

APPLIES = QG_CYCLING
N_MEMBERS = 20
INFLATION_GRID = np.array([1.02, 1.05, 1.1])
RADIUS_GRID_KM = np.array([15.0, 25.0, 40.0, 60.0, 90.0])


def q_to_psi(model, q: torch.Tensor) -> torch.Tensor:
    return model.invert(q)


def psi_to_q(model, psi: torch.Tensor, q_mean_mode: torch.Tensor) -> torch.Tensor:
    """PV of streamfunction psi (..., 2, ny, nx): q1 = lap psi1 + F1 (psi2 - psi1), q2 = lap psi2 + F2 (psi1 - psi2);
    the domain-mean PV (invisible to psi) is taken from ``q_mean_mode`` (..., 2, 1, 1)."""
    ph = torch.fft.rfft2(psi)
    k2 = model.wv2.to(ph.real.dtype)
    F1, F2 = model.F1, model.F2
    q1 = -k2 * ph[..., 0, :, :] + F1 * (ph[..., 1, :, :] - ph[..., 0, :, :])
    q2 = -k2 * ph[..., 1, :, :] + F2 * (ph[..., 0, :, :] - ph[..., 1, :, :])
    q = torch.fft.irfft2(torch.stack([q1, q2], -3), s=psi.shape[-2:])
    return q - q.mean((-2, -1), keepdim=True) + q_mean_mode


def letkf_qg(g, infl: torch.Tensor, radius: torch.Tensor, space: str = "psi", max_bytes: float = 3e8) -> torch.Tensor:
    """LETKF analysis ensemble (B, M, 2, ny, nx) of a ``QGCase`` g with members.

    ``infl`` (B,): multiplicative prior inflation of the anomalies; ``radius`` (B,) km;
    ``space``: the variable the local weights are applied to, "psi" (streamfunction,
    then inverted back to PV) or "q"."""
    X = g.xb
    B, M = X.shape[:2]
    nx = g.nx
    N = nx * nx
    HX = g.ssh_obs(X)                         # (B, M, P)
    if space == "psi":  # analyse the (smooth) streamfunction, then invert back to PV
        model = Q.lr_model(g.size, str(X.device))
        mean_mode = X.mean((-2, -1), keepdim=True)
        X = q_to_psi(model, X)
    xm = X.mean(1)
    A = (X - xm[:, None]) * infl[:, None, None, None, None]
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
    if space == "psi":
        out = psi_to_q(model, out, mean_mode)
    return out


def fit(method, train: xr.Dataset, val: xr.Dataset) -> None:
    from .qg_var3d import cycling_trial_scores

    q = train["q"].transpose("traj", "time", "lev", "y", "x").values.astype(np.float64)
    method.train_states = q.reshape(-1, *q.shape[2:])
    infl, rad = (a.ravel() for a in np.meshgrid(INFLATION_GRID, RADIUS_GRID_KM, indexing="ij"))
    method.inflation, method.radius = xr.DataArray(infl, dims="trial"), xr.DataArray(rad, dims="trial")
    n_cyc = {"tiny": 60}.get(method.size, 150)
    scores = cycling_trial_scores(method, len(infl), n_cycles=n_cyc)
    best = int(np.argmin(scores))
    method.inflation, method.radius = float(infl[best]), float(rad[best])
    method.tuning = {"inflation": infl.tolist(), "radius_km": rad.tolist(), "val_rmse_ssh": scores.tolist(),
                     "val_cycles": n_cyc}


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
            "analysis_variable": "streamfunction (local weights applied to psi, inverted back to q)",
            "tuning (val)": getattr(method, "tuning", {})}
