"""``qg-map``: SSH mapping from sparse observations (ocean data challenge 2020a style).

World and splits: ``qg`` at the chosen size (tiny LR 16², small LR 32², full LR
64²); methods fit on ``train`` (full fields: q, psi, ssh, S and every
observation store) and tune on ``val``; they are scored on ``test``.

Observing scenario: ``nadir4`` (four conventional altimeters, 6 km along-track
spacing, sampled every 6 h) by default; ``qg-map-swath`` (SWOT-like wide
swath) and ``qg-map-random`` (random positions, as many per day as LR grid
points) are the same challenge with another scenario. Observations are
point samples of the HR SSH plus Gaussian noise (``sigma`` column); the maps
are scored against the coarse-grained truth, so the HR scales the LR grid
cannot hold act as representativeness error.

What a method receives, one case per test trajectory (``predict(case)``): a
Dataset with every observation of that trajectory over the test period along
dim ``obs`` (``obs_time`` days, ``obs_x``, ``obs_y`` km, ``obs_value``,
``obs_sigma`` m) and the output coordinates ``time`` (daily, days), ``y``,
``x`` (LR cell centres, km); attrs: ``scenario``, ``L_km``, ``split``.
Training truth is in ``train`` (``fit``); ``challenge.cases(size, split="val")``
and ``challenge.truth(size, split="val")`` give the validation split in the
same form, for tuning.

Prediction: ``ssh(traj, time, y, x)`` in m, float, finite, with the template's
coordinates (``bench template qg-map out.zarr``).

Metrics, leaderboard order: µ(RMSE) (primary), σ(RMSE), λx (km), λt (days)
(2020a space-time PSD score along x and time, averaged over y and
trajectories), isotropic λ (km; the domain is doubly periodic), raw RMSE (m).
95 % bootstrap intervals: µ, σ, RMSE and isotropic λ resample
(test trajectory × 30-day block) units, because the test split has only 1
(tiny) or 2 (small) trajectories; λx, λt resample (trajectory × y band of a
quarter of the domain) units of the space-time spectra.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from . import qg_common as Q
from .base import Metric

SCENARIOS = ("nadir4", "nadir1", "swath", "random")

MAP_METRICS = (
    Metric("mu", "µ(RMSE)", True, "{:.3f}"),
    Metric("sigma", "σ(RMSE)", False, "{:.3f}"),
    Metric("lambda_x_km", "λx (km)", False, "{:.0f}"),
    Metric("lambda_t_days", "λt (days)", False, "{:.1f}"),
    Metric("lambda_iso_km", "λiso (km)", False, "{:.0f}"),
    Metric("rmse", "RMSE (m)", False, "{:.5f}"),
)


class QGMap(Q.QGChallenge):
    name = "qg-map"
    summary = "SSH mapping from nadir altimetry (4 satellites): daily LR maps, 2020a scores"
    metrics = MAP_METRICS
    case_dim = "traj"
    variables = ("ssh",)
    scenario = "nadir4"
    block_days = 30

    def __init__(self, scenario: str | None = None):
        if scenario is not None:
            if scenario not in SCENARIOS:
                raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
            self.scenario = scenario
        self.root = None
        self.description = __doc__

    # -- data handed to methods -------------------------------------------------
    def obs(self, size: str, split: str = "test", traj=None, root=None, scenario: str | None = None) -> dict:
        """Observation rows (numpy dict) of a split, optionally of one trajectory."""
        return Q.load_obs(self, size, split, scenario or self.scenario,
                          root if root is not None else self.root, traj=traj)

    def cases(self, size: str, root=None, split: str = "test"):
        root = root if root is not None else self.root
        f = self.fields(size, split, root)
        for tr in f["traj"].values:
            yield self.make_case(size, self.obs(size, split, int(tr), root), f, int(tr), split)

    def make_case(self, size: str, rows: dict, fields: xr.Dataset, traj: int, split: str) -> xr.Dataset:
        times = fields["time"].values
        keep = (rows["time"] >= times[0] - 0.5) & (rows["time"] <= times[-1] + 0.5)
        data = {f"obs_{k}": ("obs", rows[k][keep].astype(np.float64)) for k in ("time", "x", "y", "value", "sigma")}
        ds = xr.Dataset(data, coords={"time": fields["time"], "y": fields["y"], "x": fields["x"], "traj": traj})
        ds.attrs.update(scenario=self.scenario, L_km=Q.domain_km(size), split=split, size=size)
        return ds

    # -- submissions --------------------------------------------------------------
    def template(self, size: str, root=None) -> xr.Dataset:
        f = self.fields(size, "test", root)
        shape = tuple(f.sizes[d] for d in ("traj", "time", "y", "x"))
        ssh = xr.DataArray(np.full(shape, np.nan, dtype=np.float32), dims=("traj", "time", "y", "x"),
                           attrs={"units": "m", "long_name": "sea-surface height"})
        return xr.Dataset({"ssh": ssh}, coords={k: f[k] for k in ("traj", "time", "y", "x")})

    def truth(self, size: str, root=None, split: str = "test") -> xr.Dataset:
        f = self.fields(size, split, root)
        return xr.Dataset({"ssh": f["ssh"].astype(np.float64)}).load()

    def score(self, pred: xr.Dataset, size: str, root=None, split: str = "test", n_boot: int = 1000):
        truth = self.truth(size, root, split)["ssh"]
        return Q.map_scores(pred["ssh"].astype(np.float64), truth, block_days=self.block_days, n_boot=n_boot)

    def info(self, size: str) -> dict:
        cfg = Q.config(size)
        return {"world": self.world, "size": size, "scenario": self.scenario, "nx_lr": cfg["nx_lr"],
                "nx_hr": cfg["nx_hr"], "n_days": cfg["n_days"], "obs_sigma_m": cfg["ssh_sigma"],
                "bootstrap": f"(trajectory x {self.block_days}-day block) units; lambda_x/t: (trajectory x y band)"}


class QGMapSwath(QGMap):
    name = "qg-map-swath"
    summary = "SSH mapping from a SWOT-like wide swath: daily LR maps, 2020a scores"
    scenario = "swath"


class QGMapRandom(QGMap):
    name = "qg-map-random"
    summary = "SSH mapping from random point observations (one per LR cell per day on average)"
    scenario = "random"


#: every challenge name of the mapping family (methods list it in ``applies_to``)
MAP_CHALLENGES = ("qg-map", "qg-map-swath", "qg-map-random")
