"""3D-Var in the two-layer QG world (the QG part of ``baselines.var3d.Var3D``).

Control variable: ``q = qb + sqrt(s) B^{1/2} v`` with v of the size of the
state (both layers on the LR grid) and B the static spectral covariance of
``baselines.qg_covariance.SpectralCovariance``: homogeneous, isotropic,
diagonal in Fourier space, multivariate between the layers (2x2 per
wavenumber ring), so SSH observations update both layers' PV.

Cost: J(v) = 1/2 |v|^2 + 1/2 sum_p (y_p - H(q)_p)^2 / sigma_p^2 with the
challenge's exact observation operator H (SSH = (f0/g) psi1 of the LR
inversion, evaluated by the band-limited trigonometric interpolant at the
positions). H is linear, so J is quadratic; its minimiser solves
(I + G^T R^-1 G) v = G^T R^-1 (y - H qb), G = H sqrt(s) B^{1/2}, by batched
conjugate gradients (``baselines.krylov.cg``) to a relative residual of 1e-6
(at most 500 iterations). G and G^T are applied matrix-free: one spectral
multiplication (the SSH row of B^{1/2}) and the separable interpolation
weights and their transpose.

B (training split only; never test):

- one-step (``qg-da`` family, ``qg-fc48``): the ring-averaged cross-spectra of
  48 h LR forecast minus truth from the coarse-grained training truth, i.e.
  the background errors of the challenge (``forecast_errors``);
- cycling (``qg-cycle``): the better on val of the 24 h forecast-error
  spectrum and the climatological anomaly spectrum (``anomalies``), each
  normalised to the observed-SSH variance of the climatological one before
  its scale is tuned.

The scale s is tuned on the validation split by a log-spaced grid search:
one-step by the SSH µ(RMSE) of the val analyses (all trial values in one
batch), cycling by the time-mean SSH analysis RMSE after burn-in of val cycling
runs (all trials cycled as one batch; a trial that blew up scores +inf).
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from challenges import qg_common as Q
from challenges.qg_cycle import QG_CYCLING

from .krylov import cg
from .qg_case import read_qg_case
from .qg_covariance import SpectralCovariance, anomalies, forecast_errors

QG_ONE_STEP = ("qg-da", "qg-da-sparse", "qg-da-dense", "qg-fc48")
APPLIES = QG_ONE_STEP + QG_CYCLING


def is_qg(challenge) -> bool:
    return getattr(challenge, "world", None) == "qg"


def var3d_qg(g, Bc: SpectralCovariance, scale: torch.Tensor, tol: float = 1e-6, maxiter: int = 500,
             defilter: bool = True):
    """Batched QG 3D-Var analysis of a ``QGCase`` g (deterministic background (B, 2, ny, nx)).

    Returns (analysis (B, 2, ny, nx), CG iterations)."""
    model = Q.lr_model(g.size, str(g.xb.device))
    H = g.interpolator()
    nx = g.nx
    t = Q.obs_transfer(model, defilter).to(g.xb.device)
    gain = Bc.ssh_gain(t)  # (2, ny, nk)
    s = scale.sqrt()
    B = g.B
    rinv = 1.0 / g.sigma ** 2

    def G(v):
        vh = torch.fft.rfft2(v.view(B, 2, nx, nx))
        eta = torch.fft.irfft2((gain * vh).sum(1), s=(nx, nx))
        return s[:, None] * H.forward(eta)

    def GT(w):
        fh = torch.fft.rfft2(H.adjoint(s[:, None] * w))
        return torch.fft.irfft2(gain * fh[:, None], s=(nx, nx)).reshape(B, -1)

    d = g.y - H.forward(torch.fft.irfft2((t * torch.fft.rfft2(g.xb)).sum(-3), s=(nx, nx)))
    b = GT(rinv * d)
    v, it, _ = cg(lambda p: p + GT(rinv * G(p)), b, tol=tol, maxiter=maxiter)
    dq = s[:, None, None, None] * Bc.sqrt_apply(v.view(B, 2, nx, nx))
    return g.xb + dq, it


def fit(method, train: xr.Dataset, val: xr.Dataset) -> None:
    """Estimate B on train and tune its scale on val (see module doc)."""
    ch, size = method.challenge, method.size
    if ch.name in QG_CYCLING:
        candidates = {"fc24": forecast_errors(train, size, ch.cycle_hours), "clim": anomalies(train, stride_days=2)}
        grid = np.geomspace(0.005, 4.0, 13)  # from 0.005: with σ = 3 mm the clim B won at 0.05, the old edge
        best = None
        method.tuning = {}
        t = Q.obs_transfer(Q.lr_model(size)).to(method.device)
        ref = SpectralCovariance.from_samples(candidates["clim"], device=method.device).ssh_variance(t)
        for kind, samples in candidates.items():
            B = SpectralCovariance.from_samples(samples, device=method.device)
            # the same scale grid for both shapes: each B normalised to the observed-SSH variance of the
            # climatological B (the fc24 spectrum is ~100 times weaker but may have the better shape)
            method.B = B.scaled(ref / B.ssh_variance(t))
            scores = _tune_cycling(method, grid)
            method.tuning[kind] = {"grid": grid.tolist(), "val_rmse_ssh": scores.tolist()}
            i = int(np.argmin(scores))
            if best is None or scores[i] < best[0]:
                best = (scores[i], kind, float(grid[i]), method.B)
        _, kind, method.scale, method.B = best
        method.b_source = (f"{'24 h LR forecast-minus-truth' if kind == 'fc24' else 'climatological anomaly'} "
                           "spectrum of the training split (ring-averaged, 2x2 between layers)")
    else:
        samples = forecast_errors(train, size, getattr(ch, "lead_hours", 48))
        method.B = SpectralCovariance.from_samples(samples, device=method.device)
        method.b_source = (f"48 h LR forecast-minus-truth spectrum of {len(samples)} training cases "
                           "(ring-averaged, 2x2 between layers)")
        grid = np.geomspace(0.25, 8.0, 11)
        scores = _tune_one_step(method, grid)
        method.scale = float(grid[int(np.argmax(scores))])
        method.tuning = {"grid": grid.tolist(), "val_mu_ssh": scores.tolist()}
    method._iters = []


def _tune_one_step(method, grid: np.ndarray) -> np.ndarray:
    ch, size = method.challenge, method.size
    truth = ch.analysis_truth(size, split="val")["q"]
    scores = np.zeros(len(grid))
    method.scale = xr.DataArray(grid, dims="trial")
    preds, trues = [], []
    for case in ch.cases(size, split="val"):
        c = case.assign(background=case["background"].expand_dims(trial=len(grid)))
        qa = predict(method, c)["q"].transpose("trial", "time", "lev", "y", "x").values
        preds.append(qa)
        trues.append(truth.sel(traj=int(case["traj"])).transpose("time", "lev", "y", "x").values)
    for i in range(len(grid)):
        scores[i] = ch.quick_score(np.concatenate([p[i] for p in preds]), np.concatenate(trues), size)
    return scores


def cycling_trial_scores(method, n_trials: int, n_cycles: int | None = None) -> np.ndarray:
    """Time-mean post-burn-in SSH analysis RMSE of each trial on the val split (inf if any blew up)."""
    from challenges import cycling

    ch, size = method.challenge, method.size
    prob = ch.problem(size, "val", n_cycles=n_cycles).with_trials(n_trials)
    out = cycling.run(method.predict, prob, store=True)
    q = out["q"]
    if "member" in q.dims:
        q = q.mean("member")
    q = q.transpose("trial", "traj", "time", "lev", "y", "x").values
    truth = ch.split_data(size, "val")["q"][:, :q.shape[2]]
    ps = Q.ssh_of_q_np(size, q)
    ts = Q.ssh_of_q_np(size, truth)
    burn = min(ch.burn_in[size], q.shape[2] // 2)
    rmse = np.sqrt(((ps - ts[None]) ** 2).mean((-2, -1)))[:, :, burn:].mean((1, 2))
    blew = out["restarted"].transpose("trial", ...).values.reshape(n_trials, -1).any(1)
    return np.where(blew | ~np.isfinite(rmse), np.inf, rmse)


def _tune_cycling(method, grid: np.ndarray) -> np.ndarray:
    method.scale = xr.DataArray(grid, dims="trial")
    return cycling_trial_scores(method, len(grid), n_cycles=tuning_cycles(method))


def tuning_cycles(method) -> int:
    """Cycles of the val runs used for tuning (the whole split at tiny; 120 days at small and full)."""
    return {"tiny": 60}.get(method.size, 120)


def predict(method, case: xr.Dataset) -> xr.Dataset:
    g = read_qg_case(case, method.device)
    if g.ensemble:
        raise ValueError("3dvar takes a deterministic background")
    qa, it = var3d_qg(g, method.B, g.param(method.scale), tol=method.qg_tol,
                      defilter=getattr(method, "qg_defilter", True))
    if not hasattr(method, "_iters"):
        method._iters = []
    method._iters.append(it)
    return g.dataset(qa)
