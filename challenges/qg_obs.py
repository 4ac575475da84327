"""SSH observations of the QG challenges: the sparse stores, density subsamples, the full error model.

Stores (``data_scripts.make_qg``): one row per observation (time, x, y, traj,
value, sigma) per scenario: ``nadir1``, ``nadir4``, ``swath`` (every 6 h),
``random`` (daily, one position per LR cell, new each day; the DA challenges
take nested seeded subsamples of it for their density sweep) and ``fixed``
(daily, 0.2 per LR cell at positions that never change).

Error model. The observations sample the HR field, while analyses are scored
against (and states live on) the coarse-grained LR grid, so an observation's
error relative to the LR state is the instrument noise sigma plus a
representativeness error sigma_r: the HR scales the LR grid cannot hold.
``sigma_repr`` estimates it on the TRAIN split per scenario, as
sqrt(var(y - H(x_LR)) - mean(sigma²)) with H the challenges' exact operator
(``qg_world.obs_field_map`` sampled at the positions) and x_LR the LR truth at
the observation time (daily snapshots only); it is cached with the dataset
(``derived/obs_error.json``). Cases give both (``obs_sigma``,
``obs_sigma_repr``); methods use R = sigma² + sigma_r².
"""
from __future__ import annotations

import json

import lazy_loader as lazy
import numpy as np

from . import qg_world as W

torch = lazy.load("torch")
xr = lazy.load("xarray")

SCENARIOS = ("nadir1", "nadir4", "swath", "random", "fixed")
COLUMNS = ("time", "x", "y", "value", "sigma", "traj")


def open_store(challenge, size: str, split: str, store: str, root=None):
    return xr.open_zarr(challenge.data_dir(size, root) / split / f"{store}.zarr", consolidated=False)


def load_obs(challenge, size: str, split: str, scenario: str, root=None, traj=None) -> dict[str, np.ndarray]:
    """Observation rows of a split (numpy): time, x, y, value, sigma, traj (optionally of one trajectory)."""
    ds = open_store(challenge, size, split, f"obs_{scenario}", root)
    tr = ds["traj"].values
    if traj is not None:
        lo, hi = np.searchsorted(tr, traj, side="left"), np.searchsorted(tr, traj, side="right")
        if not np.all(tr[lo:hi] == traj):  # not sorted by traj: fall back to a mask
            sel = np.flatnonzero(tr == traj)
            return {k: np.asarray(ds[k].values[sel]) for k in COLUMNS}
        ds = ds.isel(obs=slice(int(lo), int(hi)))
    return {k: np.asarray(ds[k].values) for k in COLUMNS}


def daily_subsample(obs: dict, days, n: int, traj: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """A random subsample of ``n`` rows of each day in ``days`` of one trajectory's daily obs.

    The first ``n`` rows of a fixed random permutation of each day's rows (seeded by
    (seed, traj, day)), so the densities of a sweep are nested and identical for every
    method. Returns arrays (len(days), n).
    """
    t = obs["time"]
    out = {k: [] for k in ("x", "y", "value", "sigma")}
    for d in np.atleast_1d(days):
        lo = np.searchsorted(t, d - 1e-6, side="left")
        hi = np.searchsorted(t, d + 1e-6, side="right")
        if hi - lo < n:
            raise ValueError(f"day {d} holds {hi - lo} observations, fewer than the {n} asked for")
        perm = np.random.default_rng([seed, int(traj), int(round(d))]).permutation(hi - lo)
        rows = lo + np.sort(perm[:n])
        for k in out:
            out[k].append(obs[k][rows])
    return {k: np.stack(v).astype(np.float64) for k, v in out.items()}


def n_random(size: str, fraction: float) -> int:
    """Number of random observations per analysis time at ``fraction`` of the LR grid points."""
    return max(1, int(round(fraction * W.lr_nx(size) ** 2)))


def estimate_sigma_repr(obs_values, model_values, sigma) -> float:
    """sqrt(max(0, var(y - H x) - mean(sigma²))): the error of y relative to H x beyond the instrument's.

    ``obs_values`` y, ``model_values`` H x and ``sigma`` per observation (1-D arrays).
    """
    d = np.asarray(obs_values, np.float64) - np.asarray(model_values, np.float64)
    return float(np.sqrt(max(0.0, d.var() - float(np.mean(np.asarray(sigma, np.float64) ** 2)))))


def _derived_path(challenge, size: str, root, name: str):
    return challenge.data_dir(size, root) / "derived" / name


def cached(challenge, size: str, root, name: str, compute):
    """A JSON-able result computed once per dataset (keyed by its fingerprint) under ``derived/``."""
    from data_scripts.atomic import write_text
    from data_scripts.manifest import fingerprint

    path = _derived_path(challenge, size, root, name)
    fp = fingerprint(challenge.data_dir(size, root))
    try:
        got = json.loads(path.read_text())
        if got.get("fingerprint") == fp:
            return got["value"]
    except (OSError, ValueError, KeyError):
        pass
    value = compute()
    try:
        write_text(path, json.dumps({"fingerprint": fp, "value": value}, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only dataset: recompute next time
    return value


def sigma_repr(challenge, size: str, scenario: str, root=None) -> float:
    """Representativeness error std (m) of ``scenario`` relative to the LR state, from the train split."""
    return cached(challenge, size, root, "obs_error.json", lambda: _all_sigma_repr(challenge, size, root))[scenario]


def _all_sigma_repr(challenge, size: str, root) -> dict:
    fields = challenge.open(size, "train", root=root)
    q = fields["q"].transpose("traj", "time", "lev", "y", "x")
    days = fields["time"].values
    fmap = W.obs_field_map(size)
    L = W.domain_km(size)
    n = W.lr_nx(size)
    out = {}
    for scen in SCENARIOS:
        rows = load_obs(challenge, size, "train", scen, root)
        on_snapshot = np.abs(rows["time"] - np.round(rows["time"])) < 1e-6
        rows = {k: v[on_snapshot] for k, v in rows.items()}
        model_vals = np.empty(len(rows["time"]))
        for tr in np.unique(rows["traj"]):
            f = fmap(torch.as_tensor(q.isel(traj=int(tr)).values.astype(np.float64)))  # (time, ny, nx)
            sel = np.flatnonzero(rows["traj"] == tr)
            ti = np.searchsorted(days, rows["time"][sel] - 1e-6)
            for k in np.unique(ti):
                s = sel[ti == k]
                from data_scripts.obs import TrigInterpolator

                H = TrigInterpolator(rows["x"][s], rows["y"][s], n, n, L, L)
                model_vals[s] = H.forward(f[k][None])[0].numpy()
        out[scen] = estimate_sigma_repr(rows["value"], model_vals, rows["sigma"])
    return out


def observations(x, y, value, sigma, size: str, sigma_r: float, device="cpu", times=None):
    """``Observations`` of arrays (B, P) (positions in km)."""
    from .problems import Observations

    def t(a):
        return torch.as_tensor(np.array(a, dtype=np.float64), device=device)

    xt, yt = t(x), t(y)
    pos = torch.stack([yt, xt], -1)  # columns in geometry axes order (y, x)
    return Observations(values=t(value), sigma=t(sigma), positions=pos, valid=torch.ones_like(xt, dtype=torch.bool),
                        sigma_repr=float(sigma_r), times=None if times is None else t(times))


def operator(size: str, x, y, device="cpu"):
    """The exact observation operator H of SSH at positions (B, P) (km): ``ObservationOperator``."""
    from data_scripts.obs import TrigInterpolator

    from .problems import ObservationOperator

    n, L = W.lr_nx(size), W.domain_km(size)
    return ObservationOperator(W.obs_field_map(size, device), TrigInterpolator(x, y, n, n, L, L, device=device))
