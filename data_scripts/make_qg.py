"""Dataset recipe for the two-layer QG world (``qg``).

The truth runs at high resolution (HR) from a random initial condition per
trajectory seed; spin-up is discarded. Every day the HR state is
coarse-grained to the LR grid (``coarsen``) and stored with its
streamfunction, SSH and the subgrid forcing S. Observations of SSH are
sampled from the HR field at off-grid positions every ``obs_every`` model
steps (nadir tracks, swath) or at the daily snapshots (``random``, which the
DA challenges subsample for their density sweep, and ``fixed``, the same
positions every day for ``qg-cycle-fixed``), exactly by spectral
evaluation, plus Gaussian noise of std ``ssh_sigma``.

On disk: x, y in km, time in days since the first stored snapshot,
``lev`` 1 (upper) and 2 (lower); observations sparse, one row per
observation (``time, x, y, traj, value, sigma``).
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
import xarray as xr

from . import obs as obs_systems

HOUR = 3600.0
#: scenarios sampled at the daily snapshots (the others every ``obs_every`` model steps)
DAILY = ("random", "fixed")


def regime(cfg: dict) -> dict:
    """pyqg keyword parameters of the configured regime (``eddy`` or ``jet``)."""
    from .qg import EDDY, JET

    return dict({"eddy": EDDY, "jet": JET}[cfg["regime"]])


def models(cfg: dict, device="cpu"):
    """(HR model, LR model) of a configuration, float64."""
    from .qg import QGModel

    params = dict(regime(cfg), dt=cfg["dt"])
    hr = QGModel(nx=cfg["nx_hr"], **params, dtype=torch.float64, device=device)
    lr = QGModel(nx=cfg["nx_lr"], **params, dtype=torch.float64, device=device)
    return hr, lr


def obs_times(cfg: dict, scenario: str) -> np.ndarray:
    """Times (s since the first snapshot) at which a scenario samples the HR field."""
    total = cfg["n_days"] * 24 * HOUR
    every = cfg["snapshot_every"] if scenario in DAILY else cfg["obs_every"]
    return np.arange(0.0, total, every * cfg["dt"])


def obs_positions(cfg: dict, scenario: str, seed: int) -> dict[str, np.ndarray]:
    """Positions (m) and times (s) of one trajectory's observations, snapped to sample times."""
    L = regime(cfg)["L"]
    times = obs_times(cfg, scenario)
    p = obs_systems.positions(scenario, times, L, L, seed, **cfg["obs"][scenario])
    step = (cfg["snapshot_every"] if scenario in DAILY else cfg["obs_every"]) * cfg["dt"]
    t = np.clip(np.round(np.asarray(p["time"], dtype=np.float64) / step) * step, 0.0, times[-1])
    order = np.lexsort((np.asarray(p["x"]), t))
    return {"time": t[order], "x": np.asarray(p["x"], np.float64)[order] % L,
            "y": np.asarray(p["y"], np.float64)[order] % L}


def templates(cfg: dict, split: str, seeds: list[int]) -> dict[str, xr.Dataset]:
    import dask.array as da

    L = regime(cfg)["L"]
    n, nx, nd = len(seeds), cfg["nx_lr"], cfg["n_days"]
    xc = (np.arange(nx) + 0.5) * L / nx / 1e3
    coords = {
        "traj": np.arange(n),
        "time": xr.Variable("time", np.arange(nd, dtype=np.float64),
                            {"units": "days", "long_name": "time since first stored snapshot"}),
        "lev": xr.Variable("lev", np.array([1, 2]), {"long_name": "layer (1 = upper)"}),
        "y": xr.Variable("y", xc, {"units": "km", "long_name": "y (cell centres)"}),
        "x": xr.Variable("x", xc, {"units": "km", "long_name": "x (cell centres)"}),
    }
    ct = min(nd, 120)
    z4 = da.zeros((n, nd, 2, nx, nx), chunks=(1, ct, 2, nx, nx), dtype=np.float32)
    z3 = da.zeros((n, nd, nx, nx), chunks=(1, ct, nx, nx), dtype=np.float32)
    fields = xr.Dataset({
        "q": (("traj", "time", "lev", "y", "x"), z4, {"units": "s-1", "long_name": "potential vorticity anomaly (coarse-grained HR)"}),
        "psi": (("traj", "time", "lev", "y", "x"), z4, {"units": "m2 s-1", "long_name": "streamfunction"}),
        "ssh": (("traj", "time", "y", "x"), z3, {"units": "m", "long_name": "sea-surface height f0/g psi1"}),
        "S": (("traj", "time", "lev", "y", "x"), z4,
              {"units": "s-2", "long_name": "subgrid PV forcing, added to the LR tendency"}),
    }, coords=coords, attrs={"regime": cfg["regime"], "f0": cfg["f0"], "g": cfg["g"]})
    out = {"fields": fields}
    for scen in cfg["obs"]:
        rows = [obs_positions(cfg, scen, s) for s in seeds]
        cnt = [len(r["time"]) for r in rows]
        cat = {k: np.concatenate([r[k] for r in rows]) for k in ("time", "x", "y")}
        nobs = int(sum(cnt))
        out[f"obs_{scen}"] = xr.Dataset({
            "time": ("obs", cat["time"] / 86400.0, {"units": "days", "long_name": "observation time"}),
            "x": ("obs", cat["x"] / 1e3, {"units": "km"}),
            "y": ("obs", cat["y"] / 1e3, {"units": "km"}),
            "traj": ("obs", np.repeat(np.arange(n), cnt)),
            "value": ("obs", da.zeros(nobs, chunks=max(nobs, 1), dtype=np.float32),
                      {"units": "m", "long_name": "observed sea-surface height"}),
            "sigma": ("obs", np.full(nobs, cfg["ssh_sigma"], np.float32), {"units": "m", "long_name": "observation error std"}),
        }, attrs={"scenario": scen, **{k: v for k, v in cfg["obs"][scen].items()}})
    return out


def simulate(cfg: dict, split: str, seeds: list[int], progress=None) -> dict[str, dict[str, np.ndarray]]:
    """Run a group of HR trajectories and return {store: {var: values}} for their region."""
    from .coarsen import coarsen, subgrid_forcing
    from .qg import keep_freed_memory

    keep_freed_memory()
    hr, lr = models(cfg)
    L = regime(cfg)["L"]
    scale = cfg["f0"] / cfg["g"]
    q = spun_up(hr, cfg, seeds, progress)
    n_steps = cfg["n_days"] * cfg["snapshot_every"]
    per = {scen: [obs_positions(cfg, scen, s) for s in seeds] for scen in cfg["obs"]}
    values = {scen: [np.empty(len(p["time"]), np.float32) for p in per[scen]] for scen in cfg["obs"]}
    fields = {k: [] for k in ("q", "psi", "ssh", "S")}
    every = cfg["obs_every"]
    for step, qs in _states(hr, q, n_steps, every):
        t = step * cfg["dt"]
        fh = torch.fft.rfft2(scale * hr.invert(qs)[:, 0])
        for scen in cfg["obs"]:
            for b, p in enumerate(per[scen]):
                sel = np.flatnonzero(p["time"] == t)
                if sel.size:
                    v = obs_systems.sample_spectral(fh[b:b + 1], torch.as_tensor(p["x"][sel]), torch.as_tensor(p["y"][sel]),
                                                    L, L, hr.nx, hr.nx)
                    values[scen][b][sel] = v.reshape(-1).numpy()
        if step % cfg["snapshot_every"] == 0:
            ql = coarsen(qs, cfg["nx_lr"])
            pl = lr.invert(ql)
            fields["q"].append(ql.numpy())
            fields["psi"].append(pl.numpy())
            fields["ssh"].append(scale * pl[:, 0].numpy())
            fields["S"].append(subgrid_forcing(hr, lr, qs).numpy())
        if progress is not None:
            progress(every)
    out = {"fields": {k: np.stack(v, axis=1).astype(np.float32) for k, v in fields.items()}}
    for ci, scen in enumerate(cfg["obs"]):
        noisy = []
        for b, s in enumerate(seeds):
            rng = np.random.default_rng([s, 2, ci])
            noisy.append(values[scen][b] + (cfg["ssh_sigma"] * rng.standard_normal(values[scen][b].shape)).astype(np.float32))
        out[f"obs_{scen}"] = {"value": np.concatenate(noisy) if noisy else np.empty(0, np.float32)}
    return out


def spun_up(hr, cfg: dict, seeds: list[int], progress=None) -> torch.Tensor:
    """HR states of a group of trajectories at the first stored snapshot: the seeds' initial conditions run
    through the discarded spin-up."""
    q = torch.cat([hr.initial_condition(1, seed=s) for s in seeds])
    spin = int(round(cfg["spinup_days"] * 24 * HOUR / cfg["dt"]))
    chunk = 24 * 30
    for start in range(0, spin, chunk):
        q = hr.step(q, min(chunk, spin - start))  # restarting AB3 every chunk is harmless: spin-up is discarded
        if progress is not None:
            progress(min(chunk, spin - start))
    return q


def coarse_states_at(cfg: dict, seeds: list[int], steps) -> np.ndarray:
    """Coarse-grained LR PV (traj, len(steps), 2, ny, nx), float32 as stored, of a group of trajectories at
    model ``steps`` since the first stored snapshot (any step, not only the daily ones the dataset keeps),
    regenerated with ``simulate``'s recipe. Called with the group ``simulate`` ran (``cfg["group"]``), on the
    CPU that made the dataset, its daily states are the stored bytes; ``challenges`` check that before use."""
    from .coarsen import coarsen

    steps = np.asarray(steps, dtype=np.int64)
    hr, _ = models(cfg)
    q = spun_up(hr, cfg, seeds)
    out = np.empty((len(seeds), len(steps), hr.nz, cfg["nx_lr"], cfg["nx_lr"]), np.float32)
    want = {int(s): np.flatnonzero(steps == s) for s in np.unique(steps)}
    for n, qs in itertools.chain([(0, q)], hr.run(q, int(steps.max(initial=0)), 1)):
        if n in want:
            out[:, want[n]] = coarsen(qs, cfg["nx_lr"]).numpy()[:, None]
    return out


def _states(model, q0: torch.Tensor, n_steps: int, every: int):
    """(step, state) at steps 0, every, 2*every, ... < n_steps of one continuous AB3 run."""
    yield 0, q0
    for idx, q in model.run(q0, n_steps - every, every):
        yield idx, q


def n_progress(cfg: dict, n_traj: int) -> int:
    """Progress units (model steps) of one group."""
    return int(round(cfg["spinup_days"] * 24 * HOUR / cfg["dt"])) + cfg["n_days"] * cfg["snapshot_every"]
