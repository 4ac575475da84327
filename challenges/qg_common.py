"""Shared machinery of the QG challenges (``qg-map``, ``qg-da``, ``qg-cycle``, ``qg-fc48``).

* geometry of the LR grid (cell centres in km, pyqg's grid) and the LR model
  (``data_scripts.make_qg.models(cfg)[1]``: the "operational" forecast model,
  pyqg eddy parameters, no subgrid closure, dt = 1 h);
* the observation operator of every QG challenge: sea-surface height
  ``eta = (f0/g) psi1`` of the LR state ``q`` (``psi`` from the LR spectral
  inversion), evaluated at off-grid positions *exactly* as the band-limited
  trigonometric interpolant of the LR grid field (the same interpolant as
  ``data_scripts.obs.sample_spectral``, written here as a separable periodic
  Dirichlet kernel so that its adjoint is cheap: ``Interpolator``);
* access to the sparse observation stores;
* scoring helpers with bootstrap intervals (``map_scores``,
  ``snapshot_scores``) on top of ``metrics``.

Units: x, y in km, time in days, SSH in m, q in 1/s.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import xarray as xr

from data_scripts.config import F0, GRAVITY, get_config

from .base import Challenge, Score

#: SSH per unit upper-layer streamfunction, eta = (f0/g) psi1 (s/m)
SSH_PER_PSI = F0 / GRAVITY
HOUR = 3600.0


# -- geometry and model -----------------------------------------------------------


def config(size: str) -> dict:
    return get_config("qg", size)


def domain_km(size: str) -> float:
    """Side of the doubly periodic square domain (km), from the LR model."""
    return lr_model(size).L / 1e3


def lr_nx(size: str) -> int:
    return int(config(size)["nx_lr"])


def grid_km(size: str) -> np.ndarray:
    """LR cell centres (km), the same for x and y."""
    n, L = lr_nx(size), domain_km(size)
    return (np.arange(n) + 0.5) * L / n


@lru_cache(maxsize=8)
def _lr_model_cached(size: str, device: str):
    from data_scripts.make_qg import models

    return models(config(size), device=device)[1]


def lr_model(size: str, device="cpu"):
    """The LR forecast model (float64) of ``size``: ``data_scripts.make_qg.models(cfg)[1]``."""
    return _lr_model_cached(size, str(device))


def steps_per_hour(size: str) -> int:
    return int(round(HOUR / config(size)["dt"]))


def forecast(model, q: torch.Tensor, hours: float) -> torch.Tensor:
    """``q`` (..., 2, ny, nx) advanced by ``hours`` with the LR model (one fresh AB3 start)."""
    n = int(round(hours * HOUR / model.dt))
    if n == 0:
        return q.clone()
    return model.step(q, n)


def ssh_of_q(model, q: torch.Tensor) -> torch.Tensor:
    """SSH (m), (..., ny, nx), of LR PV q (..., 2, ny, nx): (f0/g) psi1 from the LR inversion."""
    return SSH_PER_PSI * model.invert(q)[..., 0, :, :]


def ssh_transfer(model) -> torch.Tensor:
    """(2, ny, nx//2+1) real multipliers t_l(k): rfft2(eta) = sum_l t_l(k) rfft2(q_l)."""
    return SSH_PER_PSI * model.a[0].to(torch.float64)


def defilter_gain(nx: int) -> torch.Tensor:
    """(ny, nx//2+1) multipliers undoing the coarse-graining filter on the LR grid (0 on the LR Nyquist
    row and column, which the coarse-graining removes).

    The observations sample the HR field, whose resolved scales are the LR (coarse-grained) field
    divided by the filter's transfer function; ``ssh_transfer(model) * defilter_gain(nx)`` maps the LR
    state to those scales of the observed SSH.
    """
    from data_scripts.coarsen import filter_gain

    g = filter_gain(nx).to(torch.float64)
    inv = 1.0 / g
    inv[nx // 2, :] = 0.0
    inv[:, -1] = 0.0
    return inv


def obs_transfer(model, defilter: bool = True) -> torch.Tensor:
    """(2, ny, nk) transfer from LR PV to the SSH the observations see at resolved scales.

    ``defilter=False``: the SSH of the LR state itself (``ssh_transfer``)."""
    t = ssh_transfer(model)
    return t * defilter_gain(model.nx).to(t) if defilter else t


def ssh_of_q_np(size: str, q: np.ndarray) -> np.ndarray:
    """``ssh_of_q`` for numpy input (any leading dims), float64."""
    m = lr_model(size)
    t = torch.as_tensor(np.asarray(q, dtype=np.float64))
    return ssh_of_q(m, t).numpy()


# -- observation operator ------------------------------------------------------------


def dirichlet_weights(coord: torch.Tensor, n: int, length: float) -> torch.Tensor:
    """Weights w (..., n) with f(coord) = sum_i w_i f_i for the periodic trigonometric interpolant
    of samples f_i at (i + 1/2) length/n (even n; the Nyquist mode as a cosine, as
    ``data_scripts.obs.sample_spectral``)."""
    u = coord.to(torch.float64) * (n / length) - 0.5
    d = u.unsqueeze(-1) - torch.arange(n, dtype=torch.float64, device=coord.device)
    k = torch.arange(1, n // 2, dtype=torch.float64, device=coord.device)
    w = 1.0 + 2.0 * torch.cos((2.0 * math.pi / n) * d.unsqueeze(-1) * k).sum(-1) + torch.cos(math.pi * d)
    return w / n


class Interpolator:
    """Exact evaluation of LR grid fields at off-grid points, batched, with its adjoint.

    ``x``, ``y``: (B, P) positions (km) per batch member (one set of positions per
    field). ``forward(f)``: f (B, ny, nx) -> (B, P); ``adjoint(w)``: (B, P) -> (B, ny, nx).
    Separable: value = sum_{j,i} Dy[p, j] f[j, i] Dx[p, i].
    """

    def __init__(self, x, y, nx: int, L: float, device="cpu", ny: int | None = None):
        ny = nx if ny is None else ny
        x = torch.as_tensor(x, dtype=torch.float64, device=device)
        y = torch.as_tensor(y, dtype=torch.float64, device=device)
        if x.ndim == 1:
            x, y = x[None], y[None]
        self.Dx = dirichlet_weights(x, nx, L)
        self.Dy = dirichlet_weights(y, ny, L)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bpj,bji,bpi->bp", self.Dy, f.to(torch.float64), self.Dx)

    def adjoint(self, w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bp,bpj,bpi->bji", w.to(torch.float64), self.Dy, self.Dx)


# -- data access -------------------------------------------------------------------


class QGChallenge(Challenge):
    """A challenge of the ``qg`` world that remembers the data root given to ``train_val``."""

    world = "qg"
    root = None

    def train_val(self, size: str, root=None):
        self.root = root
        return super().train_val(size, root)

    def fields(self, size: str, split: str = "test", root=None) -> xr.Dataset:
        """The LR fields store (q, psi, ssh, S) of a split."""
        return self.open(size, split, root=root if root is not None else self.root)


def open_store(challenge, size: str, split: str, store: str, root=None) -> xr.Dataset:
    return xr.open_zarr(challenge.data_dir(size, root) / split / f"{store}.zarr", consolidated=False)


def load_obs(challenge, size: str, split: str, scenario: str, root=None, traj=None) -> dict[str, np.ndarray]:
    """Observation rows of a split (numpy): time, x, y, value, sigma, traj (optionally one trajectory)."""
    ds = open_store(challenge, size, split, f"obs_{scenario}", root)
    tr = ds["traj"].values
    if traj is not None:
        lo, hi = np.searchsorted(tr, traj, side="left"), np.searchsorted(tr, traj, side="right")
        if not np.all(tr[lo:hi] == traj):  # not sorted by traj: fall back to a mask
            sel = np.flatnonzero(tr == traj)
            return {k: np.asarray(ds[k].values[sel]) for k in ("time", "x", "y", "value", "sigma", "traj")}
        ds = ds.isel(obs=slice(int(lo), int(hi)))
    return {k: np.asarray(ds[k].values) for k in ("time", "x", "y", "value", "sigma", "traj")}


def daily_random_obs(obs: dict, days, n: int, traj: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """A random subsample of ``n`` rows of each day in ``days`` of one trajectory's ``random`` obs.

    The ``random`` store holds, at each daily snapshot, positions drawn uniformly
    (stored sorted by x). The subsample takes the first ``n`` rows of a fixed random
    permutation of each day's rows (seeded by (seed, traj, day)), so the densities of
    the sweep are nested and identical for every method. Returns arrays (len(days), n).
    """
    t = obs["time"]
    out = {k: [] for k in ("x", "y", "value", "sigma")}
    for d in np.atleast_1d(days):
        lo = np.searchsorted(t, d - 1e-6, side="left")
        hi = np.searchsorted(t, d + 1e-6, side="right")
        if hi - lo < n:
            raise ValueError(f"day {d} holds {hi - lo} random observations, fewer than the {n} asked for")
        perm = np.random.default_rng([seed, int(traj), int(round(d))]).permutation(hi - lo)
        rows = lo + np.sort(perm[:n])
        for k in out:
            out[k].append(obs[k][rows])
    return {k: np.stack(v).astype(np.float64) for k, v in out.items()}


def n_random(size: str, fraction: float) -> int:
    """Number of random observations per analysis time at ``fraction`` of the LR grid points."""
    return max(1, int(round(fraction * lr_nx(size) ** 2)))


# -- scoring -------------------------------------------------------------------------


def _interval(values) -> tuple[float, float]:
    from metrics.bootstrap import percentile_interval

    return percentile_interval(values)


def rmse_family(pred: xr.DataArray, truth: xr.DataArray, units: list[np.ndarray], n_boot: int = 1000,
                seed: int = 0, prefix: str = "") -> dict[str, Score]:
    """rmse, mu, sigma (2020a) of ``pred`` vs ``truth`` with dims (case, ...), bootstrap over ``units``.

    ``units``: list of integer arrays of case indices (e.g. one (trajectory, time block)
    each); a resample draws units with replacement and pools their cases. σ is the std
    over cases of the per-case score 1 - RMSE_c/RMS_c.
    """
    from metrics import per_time_sums, scores_from_sums
    from metrics.bootstrap import resample_indices

    sums = per_time_sums(pred, truth, time="case")
    point = scores_from_sums(sums)
    idx = resample_indices(len(units), n_boot, seed)
    boot = {k: np.empty(n_boot) for k in point}
    for b in range(n_boot):
        sel = np.concatenate([units[i] for i in idx[b]])
        s = scores_from_sums(sums, index=sel)
        for k in point:
            boot[k][b] = s[k]
    return {prefix + k: Score(point[k], *_interval(boot[k])) for k in ("rmse", "mu", "sigma")}


def isotropic_score(pred: xr.DataArray, truth: xr.DataArray, units: list[np.ndarray], n_boot: int = 1000,
                    seed: int = 0, key: str = "lambda_iso_km") -> dict[str, Score]:
    """Isotropic effective resolution (km) over dims (case, y, x) with a bootstrap over ``units``."""
    from metrics import isotropic_from_psd, isotropic_psd
    from metrics.bootstrap import resample_indices

    psd = isotropic_psd(pred, truth, t="case")
    res = isotropic_from_psd(psd)
    e = np.stack([psd.psd_err.values[u].mean(0) for u in units])
    r = np.stack([psd.psd_ref.values[u].mean(0) for u in units])
    w = np.array([len(u) for u in units], dtype=float)
    idx = resample_indices(len(units), n_boot, seed)
    vals = np.empty(n_boot)
    for b in range(n_boot):
        ww = w[idx[b]][:, None]
        sub = psd.isel(case=[0]).copy()
        sub["psd_err"] = (("case", "wavenumber"), (e[idx[b]] * ww).sum(0, keepdims=True) / ww.sum())
        sub["psd_ref"] = (("case", "wavenumber"), (r[idx[b]] * ww).sum(0, keepdims=True) / ww.sum())
        vals[b] = isotropic_from_psd(sub)["lambda_iso"]
    flag = res["flags"]["lambda_iso"]
    extra = {} if flag == "ok" else {"flag": flag}
    return {key: Score(res["lambda_iso"], *_interval(vals), extra=extra)}


def spacetime_scores(pred: xr.DataArray, truth: xr.DataArray, n_bands: int = 4, n_boot: int = 1000,
                     seed: int = 0) -> dict[str, Score]:
    """λx (km) and λt (days) of the 2020a recipe over dims (traj, time, y, x).

    Spectra over (time, x) per (traj, y) row, averaged over traj and y. The bootstrap
    resamples (trajectory, y band) units, ``n_bands`` bands of adjacent rows per
    trajectory (rows within a band are correlated; bands ~ L/n_bands apart much less).
    """
    from metrics import spacetime_psd, spacetime_resolution, spectral_resolution_ci

    psd = spacetime_psd(pred, truth, x="x", t="time", avg=("traj", "y"))
    res = spacetime_resolution(psd)
    ny = psd.sizes["y"]
    nb = max(1, min(n_bands, ny))
    band = np.arange(ny) * nb // ny
    psd_b = psd.assign_coords(band=("y", band)).groupby("band").mean("y")
    psd_b = psd_b.stack(unit=("traj", "band")).reset_index("unit", drop=True)
    psd_b.attrs.update(psd.attrs)
    ci = spectral_resolution_ci(psd_b, "unit", n=n_boot, seed=seed)
    out = {}
    for key, name in (("lambda_x_km", "lambda_x"), ("lambda_t_days", "lambda_t")):
        flag = res["flags"][name]
        out[key] = Score(res[name], *ci[name], extra={} if flag == "ok" else {"flag": flag})
    return out


def stack_cases(da: xr.DataArray, dims=("traj", "time")) -> xr.DataArray:
    """(traj, time, ...) -> (case, ...) with an integer ``case`` coordinate."""
    out = da.stack(case=dims).reset_index("case", drop=True)
    out = out.transpose("case", *[d for d in out.dims if d != "case"])
    return out.assign_coords(case=np.arange(out.sizes["case"]))


def time_block_units(n_traj: int, n_time: int, block: int) -> list[np.ndarray]:
    """Bootstrap units for cases stacked as (traj, time): consecutive blocks of ``block`` times
    per trajectory (the last, shorter block merged into the previous one)."""
    nb = max(1, n_time // block)
    edges = np.linspace(0, n_time, nb + 1).round().astype(int)
    units = []
    for tr in range(n_traj):
        for b in range(nb):
            units.append(tr * n_time + np.arange(edges[b], edges[b + 1]))
    return units


def map_scores(pred: xr.DataArray, truth: xr.DataArray, block_days: int = 30, n_boot: int = 1000,
               seed: int = 0, spacetime: bool = True) -> dict[str, Score]:
    """2020a scores of daily SSH maps (traj, time, y, x): µ, σ, RMSE, λx, λt, isotropic λ.

    Intervals: µ, σ, RMSE and isotropic λ resample (trajectory, ``block_days``-day block)
    units (blocks, because maps a few days apart share their errors); λx, λt resample
    (trajectory, y band) units of the space-time spectra.
    """
    pred = pred.transpose("traj", "time", "y", "x")
    truth = truth.transpose("traj", "time", "y", "x")
    units = time_block_units(truth.sizes["traj"], truth.sizes["time"], block_days)
    p, t = stack_cases(pred), stack_cases(truth)
    out = rmse_family(p, t, units, n_boot, seed)
    if spacetime:
        out.update(spacetime_scores(pred, truth, n_boot=n_boot, seed=seed))
    out.update(isotropic_score(p, t, units, n_boot, seed))
    return out
