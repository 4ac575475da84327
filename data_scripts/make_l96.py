"""Dataset recipes for the Lorenz-96 worlds (``l96`` and ``l96x``).

A recipe gives, for one split, the templates of its zarr stores (``templates``)
and a function that simulates a group of trajectories and returns the values
for their region of each store (``simulate``). ``generate.py`` does the rest.

L96 observations are stored dense, ``y_obs(traj, time, i)`` with ``sigma``:
every variable is observed every step (Sakov & Oke 2008); challenges take
subsets of indices.
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from .l96 import Lorenz96, Lorenz96TwoScale

DAYS_PER_MTU = 5.0  # 0.05 model time units = 6 h


def _time_coord(n_out: int, dt_out: float) -> xr.Variable:
    days = np.arange(n_out, dtype=np.float64) * dt_out * DAYS_PER_MTU
    return xr.Variable("time", days, {"units": "days", "long_name": "time since start of trajectory",
                                      "model_time_step": dt_out})


def _lazy(shape, chunks):
    import dask.array as da

    return da.zeros(shape, chunks=chunks, dtype=np.float64)


def templates(cfg: dict, split: str, seeds: list[int]) -> dict[str, xr.Dataset]:
    n_traj = len(seeds)
    if cfg["world"] == "l96":
        n_out, N = cfg["n_steps"], cfg["N"]
        tc = _time_coord(n_out, cfg["dt"] * cfg["every"])
        coords = {"traj": np.arange(n_traj), "time": tc, "i": np.arange(N)}
        chunks = (1, min(n_out, 5000), N)
        fields = xr.Dataset(
            {"x": (("traj", "time", "i"), _lazy((n_traj, n_out, N), chunks),
                   {"units": "1", "long_name": "Lorenz-96 state"})}, coords=coords)
        obs = xr.Dataset(
            {"y_obs": (("traj", "time", "i"), _lazy((n_traj, n_out, N), chunks),
                       {"units": "1", "long_name": "observation of x with N(0, sigma^2) noise"}),
             "sigma": ((), cfg["obs_sigma"], {"units": "1", "long_name": "observation error std"})},
            coords=coords)
        return {"fields": fields, "obs": obs}
    K, J, n_out = cfg["K"], cfg["J"], cfg["n_out"]
    tc = _time_coord(n_out, cfg["dt"] * cfg["every"])
    coords = {"traj": np.arange(n_traj), "time": tc, "k": np.arange(K), "j": np.arange(J)}
    ch = min(n_out, 2000)
    fields = xr.Dataset({
        "X": (("traj", "time", "k"), _lazy((n_traj, n_out, K), (1, ch, K)),
              {"units": "1", "long_name": "slow variables"}),
        "Y": (("traj", "time", "k", "j"), _lazy((n_traj, n_out, K, J), (1, ch, K, J)),
              {"units": "1", "long_name": "fast variables"}),
        "S": (("traj", "time", "k"), _lazy((n_traj, n_out, K), (1, ch, K)),
              {"units": "1", "long_name": "subgrid forcing -(h c / b) sum_j Y_jk, added to dX/dt"}),
    }, coords=coords)
    return {"fields": fields}


def simulate(cfg: dict, split: str, seeds: list[int], progress=None) -> dict[str, dict[str, np.ndarray]]:
    """Run the trajectories of ``seeds`` (one batch) and return {store: {var: values}}."""
    if cfg["world"] == "l96":
        m = Lorenz96(N=cfg["N"], F=cfg["F"], dt=cfg["dt"])
        x = torch.cat([m.initial_condition(1, seed=s) for s in seeds])
        x = m.step(x, cfg["spinup"])
        out = np.empty((len(seeds), cfg["n_steps"], cfg["N"]))
        for t in range(cfg["n_steps"]):
            out[:, t] = x.numpy()
            x = m.step(x, cfg["every"])
            if progress is not None:
                progress(1)
        noise = np.stack([np.random.default_rng([s, 1]).standard_normal(out.shape[1:]) for s in seeds])
        return {"fields": {"x": out}, "obs": {"y_obs": out + cfg["obs_sigma"] * noise}}
    m = Lorenz96TwoScale(K=cfg["K"], J=cfg["J"], F=cfg["F"], h=cfg["h"], b=cfg["b"], c=cfg["c"], dt=cfg["dt"])
    s = torch.cat([m.initial_condition(1, seed=sd) for sd in seeds])
    s = m.step(s, cfg["spinup"])
    n, K, J = cfg["n_out"], cfg["K"], cfg["J"]
    X = np.empty((len(seeds), n, K))
    Y = np.empty((len(seeds), n, K, J))
    S = np.empty((len(seeds), n, K))
    for t in range(n):
        xs, ys = m.split(s)
        X[:, t], Y[:, t] = xs.numpy(), ys.reshape(len(seeds), K, J).numpy()
        S[:, t] = m.coupling(s).numpy()
        s = m.step(s, cfg["every"])
        if progress is not None:
            progress(1)
    return {"fields": {"X": X, "Y": Y, "S": S}}


def n_progress(cfg: dict, n_traj: int) -> int:
    """Progress units of one split (output steps)."""
    return cfg["n_steps"] if cfg["world"] == "l96" else cfg["n_out"]
