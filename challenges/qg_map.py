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

What a method receives, one case per test trajectory: a ``MappingProblem``
with every observation of that trajectory over the test period (times in
days, positions in km, values and sigma in m, and the representativeness
error ``sigma_repr`` of the scenario, estimated on the train split:
``challenges.qg_obs``), the output times (daily) and the LR grid; its
``smoothing`` is the coarse-graining filter. As a Dataset (``bench template``
documents the output; ``training_pairs`` the inputs): ``obs_time``, ``obs_x``,
``obs_y``, ``obs_value``, ``obs_sigma`` along ``obs``, coords ``time``, ``y``,
``x``. ``fit`` gets the train split (true SSH maps) and the val split, whose
``evaluate`` scores a method on a fixed subset of val days (one 10-day run in
3 at tiny, in 9 at small and full) so that tuning stays cheap.

Training pairs (learners): one sample per (trajectory, day) of the split: the
observations within +-15 days of the day (``pair_half_window``; padded along
``obs``, ``obs_valid`` marks real rows; ``obs_time`` relative to the day) and
``target(sample, y, x)``, the true SSH map; dask-backed, one chunk per
trajectory. A learner reading a shorter window (its ``half_window``) sees only
the observations within it. 15 days: the tuned OI's time scale is 20 days, so
observations weeks away still inform a map; the pairs of ``qg-map-swath`` at
small then take about 4 GB (train) in memory.

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

import lazy_loader as lazy
import numpy as np

from . import qg_obs as O
from . import qg_scoring
from . import qg_world as W
from .base import Metric
from .qg_base import QGChallenge
from .problems import MappingProblem, Split

torch = lazy.load("torch")
xr = lazy.load("xarray")

SCENARIOS = ("nadir4", "nadir1", "swath", "random")

MAP_METRICS = (
    Metric("mu", "µ(RMSE)", True, "{:.3f}"),
    Metric("sigma", "σ(RMSE)", False, "{:.3f}"),
    Metric("lambda_x_km", "λx (km)", False, "{:.0f}"),
    Metric("lambda_t_days", "λt (days)", False, "{:.1f}"),
    Metric("lambda_iso_km", "λiso (km)", False, "{:.0f}"),
    Metric("rmse", "RMSE (m)", False, "{:.5f}"),
)


class QGMap(QGChallenge):
    name = "qg-map"
    family = "mapping"
    summary = "SSH mapping from nadir altimetry (4 satellites): daily LR maps, 2020a scores"
    leaderboard_note = """
        Reading the table (the same for the three observing systems): OI, with space-time scales
        tuned on val, is the row to beat; the ocean data challenge's learned mappers (4DVarNet)
        cut the operational OI's error by 30-60 %. Ours do not reach OI at small on 2 CPU
        cores: trained on 2160 daily maps (6 trajectories x 360 days) for at most 20 minutes,
        they resolve 75-115 km against OI's 67-70 km. The U-Net's error falls with its window
        (nadir: µ 0.726 at +-5 days, 0.795 at +-15, the default), and training on randomly
        translated samples (`ae-shift`) lifts it to 0.824. With more observations a day the
        U-Net comes closer: 0.867 against OI's 0.891 on the swath. `diffda` (an unconditional
        prior of SSH maps, 8 members) scored as climatology with the paper's blend of one day's
        observations, which fixes only the cells along that day's tracks; with every
        observation of +-10 days, each weighted by its measured error about the map of the
        day (the matched replacement, the default) it reaches µ 0.736 on nadir, above interp
        and below the U-Net."""
    metrics = MAP_METRICS
    case_dim = "traj"
    variables = ("ssh",)
    scenario = "nadir4"
    block_days = 30
    #: observations handed with each training sample: those within this many days of the map's day
    #: (the widest window a learner may read)
    pair_half_window = 15.0

    def __init__(self, scenario: str | None = None):
        if scenario is not None:
            if scenario not in SCENARIOS:
                raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
            self.scenario = scenario
        self.description = __doc__

    def obs(self, size: str, split: str = "test", traj=None, root=None) -> dict:
        """Observation rows (numpy dict) of a split, optionally of one trajectory."""
        return O.load_obs(self, size, split, self.scenario, root, traj=traj)

    def val_days(self, size: str, days: np.ndarray) -> np.ndarray:
        """The validation days methods are scored on while tuning: one 10-day run in 3 (tiny) or 9."""
        every = 3 if size == "tiny" else 9
        return days[(days // 10) % every == 0]

    def problem(self, size: str, rows: dict, times: np.ndarray, root=None, device="cpu") -> MappingProblem:
        """The ``MappingProblem`` of one trajectory's observation rows and output days."""
        g = W.geometry(size)
        obs = O.observations(rows["x"][None], rows["y"][None], rows["value"][None], rows["sigma"][None], size,
                             self.sigma_repr(size, root), device=device, times=rows["time"][None])
        xc = g.axis_coords(0)
        coords = {"time": xr.Variable("time", np.asarray(times, np.float64), {"units": "days"}),
                  "y": xr.Variable("y", xc, {"units": "km"}), "x": xr.Variable("x", xc, {"units": "km"})}
        return MappingProblem(obs=obs, times=np.asarray(times, np.float64), geometry=g, var="ssh", coords=coords,
                              smoothing=W.coarse_filter, attrs={"size": size, "scenario": self.scenario})

    def _rows(self, size, split, traj, root, days):
        rows = self.obs(size, split, traj, root)
        keep = (rows["time"] >= days[0] - 0.5) & (rows["time"] <= days[-1] + 0.5)
        return {k: v[keep].astype(np.float64) for k, v in rows.items()}

    def cases(self, size: str, root=None, split: str = "test"):
        f = self.fields(size, split, root)
        days = f["time"].values
        for tr in f["traj"].values:
            yield self.problem(size, self._rows(size, split, int(tr), root, days), days, root)

    def _split(self, size: str, name: str, root=None):
        return MappingSplit(self, size, name, root)

    # -- submissions ---------------------------------------------------------------------------------
    def template(self, size: str, root=None):
        f = self.fields(size, "test", root)
        shape = tuple(f.sizes[d] for d in ("traj", "time", "y", "x"))
        lo, hi = self.ssh_bounds(size, root)
        ssh = xr.DataArray(np.full(shape, np.nan, dtype=np.float32), dims=("traj", "time", "y", "x"),
                           attrs={"units": "m", "long_name": "sea-surface height", "valid_min": lo, "valid_max": hi})
        return xr.Dataset({"ssh": ssh}, coords={k: f[k] for k in ("traj", "time", "y", "x")})

    def truth(self, size: str, root=None, split: str = "test"):
        f = self.fields(size, split, root)
        return xr.Dataset({"ssh": f["ssh"].astype(np.float64)}).load()

    def score(self, pred, size: str, root=None, split: str = "test"):
        truth = self.truth(size, root, split)["ssh"]
        return qg_scoring.map_scores(pred["ssh"].astype(np.float64), truth, block_days=self.block_days)

    def info(self, size: str) -> dict:
        cfg = W.config(size)
        return {**super().info(size), "scenario": self.scenario, "nx_lr": cfg["nx_lr"], "nx_hr": cfg["nx_hr"],
                "n_days": cfg["n_days"], "obs_sigma_m": cfg["ssh_sigma"],
                "bootstrap": f"(trajectory x {self.block_days}-day block) units; lambda_x/t: (trajectory x y band)"}


class MappingSplit(W.Symmetric, Split):
    """A train or val split of a ``qg-map`` challenge."""

    family = "mapping"

    def __init__(self, challenge: QGMap, size: str, name: str, root=None):
        self.challenge, self.size, self.name, self.root = challenge, size, name, root
        self.geometry = W.geometry(size)
        self.field_map = W.obs_field_map(size)
        self._cache = {}

    def _fields(self):
        return self.challenge.fields(self.size, self.name, self.root)

    def states(self) -> np.ndarray:
        """True SSH maps (n, ny, nx)."""
        if "ssh" not in self._cache:
            ssh = self._fields()["ssh"].values.astype(np.float64)
            self._cache["ssh"] = ssh.reshape(-1, *ssh.shape[-2:])
        return self._cache["ssh"]

    def problems(self, trials=None):
        """One problem per trajectory, on the validation days only (``QGMap.val_days``); built once."""
        if "problems" not in self._cache:
            f = self._fields()
            days = f["time"].values
            sub = self.challenge.val_days(self.size, days)
            self._cache["problems"] = [
                self.challenge.problem(self.size, self.challenge._rows(self.size, self.name, int(tr), self.root, days),
                                       sub, self.root) for tr in f["traj"].values]
        return iter(self._cache["problems"])

    def evaluate(self, predict, n_trials=None) -> np.ndarray:
        """1 - µ(RMSE) of the maps on the validation days (pooled over trajectories)."""
        f = self._fields()
        truth = f["ssh"]
        num = den = 0.0
        for tr, problem in zip(f["traj"].values, self.problems()):
            est = np.asarray(predict(problem)["ssh"].values)
            t = truth.sel(traj=int(tr), time=problem.times).values.astype(np.float64)
            num += float(((est - t) ** 2).sum())
            den += float((t ** 2).sum())
        return np.array([np.sqrt(num / den)])

    def pair_problems(self):
        """One ``MappingProblem`` per trajectory over every day of the split, built as the test cases are, in
        the order of ``training_pairs`` (trajectory-major): for methods that map the pairs' days with another
        method first (a first guess that a learned method corrects)."""
        f = self._fields()
        days = f["time"].values
        for tr in f["traj"].values:
            yield self.challenge.problem(self.size, self.challenge._rows(self.size, self.name, int(tr), self.root, days),
                                         days, self.root)

    def training_pairs(self):
        """One sample per (trajectory, day): the obs within +-``pair_half_window`` days and the true map (module doc)."""
        import dask
        import dask.array as da

        ch, size = self.challenge, self.size
        f = self._fields()
        days = f["time"].values
        n_traj = f.sizes["traj"]
        rows = [ch.obs(size, self.name, int(tr), self.root) for tr in f["traj"].values]
        hw = ch.pair_half_window
        counts = [np.searchsorted(r["time"], days + hw, "right") - np.searchsorted(r["time"], days - hw, "left")
                  for r in rows]
        P = int(max(int(c.max()) for c in counts))
        nd = len(days)

        def block(r, k):
            out = np.zeros((5, nd, P))
            valid = np.zeros((nd, P), dtype=bool)
            for j, d in enumerate(days):
                lo, hi = np.searchsorted(r["time"], d - hw, "left"), np.searchsorted(r["time"], d + hw, "right")
                n = hi - lo
                out[0, j, :n] = r["time"][lo:hi] - d
                for c, key in enumerate(("x", "y", "value", "sigma"), start=1):
                    out[c, j, :n] = r[key][lo:hi]
                valid[j, :n] = True
            return np.concatenate([out, valid[None].astype(np.float64)])

        blocks = [da.from_delayed(dask.delayed(block)(r, k), shape=(6, nd, P), dtype=np.float64)
                  for k, r in enumerate(rows)]
        arr = da.concatenate(blocks, axis=1)
        names = ("obs_time", "obs_x", "obs_y", "obs_value", "obs_sigma")
        data = {nm: (("sample", "obs"), arr[c]) for c, nm in enumerate(names)}
        data["obs_valid"] = (("sample", "obs"), arr[5] > 0.5)
        data["target"] = (("sample", "y", "x"), f["ssh"].data.reshape(n_traj * nd, *f["ssh"].shape[-2:]).astype(np.float64))
        ds = xr.Dataset(data, coords={"y": f["y"], "x": f["x"], "traj": ("sample", np.repeat(np.arange(n_traj), nd)),
                                      "time": ("sample", np.tile(days, n_traj))})
        ds.attrs.update(split=self.name, size=size, scenario=ch.scenario, half_window_days=hw,
                        obs_sigma_repr=ch.sigma_repr(size, self.root))
        return ds

    def pairs_key(self) -> dict:
        return {"pairs": "qg windows", "split": self.name, "scenario": self.challenge.scenario,
                "half_window": self.challenge.pair_half_window}

    def problem(self, samples, device="cpu"):
        """The ``WindowProblem`` of a batch of training pairs (obs times relative to each sample's day)."""
        from .problems import Observations, WindowProblem

        def t(name, dtype=torch.float64):
            return torch.as_tensor(np.asarray(samples[name].values), dtype=dtype, device=device)

        obs = Observations(values=t("obs_value"), sigma=t("obs_sigma"),
                           positions=torch.stack([t("obs_y"), t("obs_x")], -1), valid=t("obs_valid", torch.bool),
                           sigma_repr=float(samples.attrs.get("obs_sigma_repr", 0.0)), times=t("obs_time"))
        return WindowProblem(obs=obs, geometry=self.geometry, var="ssh",
                             half_window=float(samples.attrs.get("half_window_days", self.challenge.pair_half_window)))


class QGMapSwath(QGMap):
    name = "qg-map-swath"
    summary = "SSH mapping from a SWOT-like wide swath: daily LR maps, 2020a scores"
    scenario = "swath"


class QGMapRandom(QGMap):
    name = "qg-map-random"
    summary = "SSH mapping from random point observations (one per LR cell per day on average)"
    scenario = "random"

