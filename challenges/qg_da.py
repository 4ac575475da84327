"""``qg-da``: one-step data assimilation in the two-layer QG world.

World and splits: ``qg``; methods fit on ``train``, tune on ``val`` and are
scored on ``test``.

Analysis times: every ``stride`` = 5 days of each test (and val) trajectory
from the first day with a truth one background lead earlier (every day on
train, for more learning data). At each analysis time t:

* background ``background(time, lev, y, x)`` (PV q, 1/s): the LR model's
  forecast of ``lead_hours`` started from the coarse-grained truth at
  t - lead. It is imperfect only because the LR model lacks the subgrid
  closure (and the coarse-graining), as an operational model lacks unresolved
  physics. ``qg-da`` (with ``-sparse`` and ``-dense``) uses a 7-day lead, the
  length of operational ocean DA cycles (background SSH error about 2.3 mm,
  µ about 0.83 at small); ``qg-da-48h`` (with ``-sparse`` and ``-dense``) keeps
  the 48 h lead of DiffDA (Huang et al. 2024).
* observations: SSH (m) at random positions at time t, point samples of the
  HR field plus Gaussian noise of std ``obs_sigma`` = 3 mm: ``obs_x``,
  ``obs_y`` (km), ``obs_value``, ``obs_sigma`` with dims (time, obs). The
  density is a fraction of the number of LR grid points: 0.2 (default), 0.05
  (``-sparse``), 1.0 (``-dense``): a seeded random subsample of each day's
  rows of the ``random`` store, nested across densities and the same for
  every method. Relative to the LR state they also carry a
  representativeness error ``obs_sigma_repr`` (the HR scales the LR grid
  cannot hold), estimated on the train split (``challenges.qg_obs``): methods
  use R = obs_sigma² + obs_sigma_repr². Measured on the canonical small data
  with the challenge's operator (the LR SSH with the coarse-graining filter
  undone): 1.35 mm, a total of 3.3 mm. Against the LR SSH itself (the filter
  not undone) the residual is 5.5 mm (sigma_r 4.6 mm): most of what looks like
  representativeness error there is the filter, which the exact operator
  accounts for.

The observation operator is exact: SSH = (f0/g) psi1 of the LR inversion of q
with the coarse-graining filter undone (the field the HR observations see at
the resolved scales), evaluated at the positions by the band-limited
trigonometric interpolant of the LR grid. Methods receive one
``AnalysisProblem`` per test trajectory holding all its analysis times.

Prediction: the analysis of the full LR model state, ``q(traj, time, lev, y, x)``
(1/s, both layers), optionally with a ``member`` dim (an ensemble); SSH is
diagnosed from it by the LR inversion.

Metrics, leaderboard order: µ(RMSE) of SSH (primary), raw SSH RMSE (m), gain
over the background 1 - RMSE(analysis)/RMSE(background), hours of lead gained,
isotropic λ (km), µ of q in layer 1 and 2, CRPS and spread/skill of SSH for
ensembles (with the rank histogram in the results). Hours of lead gained
(DiffDA's headline): the lead curve is the SSH RMSE of LR forecasts from the
truth against the truth at the test analysis times, hourly below one day and at
whole days from 1 day to the background lead, linear in between. The datasets
store the truth daily; the hours before each analysis day are regenerated with
the dataset's recipe and used only where they reproduce the stored states to
the bit (on another CPU they do not, docs/worlds.md: the curve is then linear
from 0 to 24 h, which understates the error of a few hours' forecast, about
0.64 mm after 1 h and 0.98 mm after 12 h against 1.08 mm after 24 h at small,
and so overstates the equivalent lead of a good analysis). The analysis error
read on it is ``equivalent_lead_h`` and
``lead_gained_h = lead_hours - equivalent_lead_h`` (0 for the background, the
whole lead for the truth; undefined for an analysis worse than the
background). The curve is cached with the dataset. 95 % bootstrap intervals
resample analysis times (cases 5 days apart, pooled over trajectories).

SSH RMSE of LR forecasts from the truth on the canonical small test split
(``bench`` measures it as the lead curve): 24 h 1.08 mm, 48 h 1.26 mm, 96 h
1.65 mm, 168 h 2.32 mm (µ 0.92, 0.91, 0.88, 0.83); see the README.

Training pairs (learners): every day of the train (or val) split as a sample:
``background`` and ``target`` (the truth), and all of that day's ``random``
observations in the order of the nested subsample, so that the first
``n_obs`` rows (attrs) are exactly this challenge's density and any other
density of the sweep is a prefix too.
"""
from __future__ import annotations

from typing import ClassVar

import lazy_loader as lazy
import numpy as np

from . import qg_obs as O
from . import qg_scoring
from . import qg_world as W
from .base import Metric, Score
from .problems import Split
from .qg_base import QGChallenge, problem_from_dataset

torch = lazy.load("torch")
xr = lazy.load("xarray")
metrics = lazy.load("metrics")

DA_METRICS = (
    Metric("mu", "µ(RMSE) SSH", True, "{:.3f}"),
    Metric("rmse", "RMSE SSH (m)", False, "{:.5f}"),
    Metric("gain", "gain vs bg", True, "{:.3f}"),
    Metric("lead_gained_h", "lead gained (h)", True, "{:.0f}"),
    Metric("lambda_iso_km", "λiso (km)", False, "{:.0f}"),
    Metric("mu_q1", "µ q1", True, "{:.3f}"),
    Metric("mu_q2", "µ q2", True, "{:.3f}"),
    Metric("crps", "CRPS SSH (m)", False, "{:.5f}"),
    Metric("spread_skill", "spread/skill", False, "{:.2f}", target=1.0),
)

DENSITY_SWEEP = (0.05, 0.2, 1.0)


class QGDA(QGChallenge):
    name = "qg-da"
    family = "analysis"
    summary = "one-step DA: 7-day LR background + random SSH obs (0.2 per LR cell) -> analysis of q"
    leaderboard_note = """
        Reading the table: the background is the LR model's 7-day forecast from the truth, so its
        only error is the LR model's (no subgrid closure), µ ≈ 0.83. The observations carry
        the instrument noise and a larger representativeness error (the HR scales the LR grid
        cannot hold), stated in every case; the gain over the background grows with density
        (`qg-da-sparse` < `qg-da` < `qg-da-dense`). *lead gained* reads the analysis error on
        the curve of forecast errors from the truth: a method that gains the whole 168 h is as
        good as the truth."""
    metrics = DA_METRICS
    case_dim = "traj"
    variables = ("q",)
    optional_dims = ("member",)
    scenario = "random"
    fraction = 0.2
    stride: ClassVar[dict] = {"train": 1, "val": 5, "test": 5}
    lead_hours = 168
    #: analysis days end this many days before the end (qg-fc48 needs truth after them)
    tail_days = 0
    #: observations per day in the training pairs, as a fraction of the LR grid points (all of the
    #: ``random`` store: every density of the sweep is a prefix of them)
    pair_obs_fraction = 1.0

    def __init__(self, fraction: float | None = None):
        if fraction is not None:
            self.fraction = float(fraction)
        self._cache = {}
        self.description = __doc__

    # -- data ---------------------------------------------------------------------------------
    def analysis_days(self, size: str, split: str = "test") -> np.ndarray:
        n_days = W.config(size)["n_days"]
        lead = int(round(self.lead_hours / 24))
        tail = self.tail_days if split == "test" else 0  # only test cases are verified after their day
        return np.arange(lead, n_days - tail, self.stride[split]).astype(np.float64)

    def n_obs(self, size: str) -> int:
        return O.n_random(size, self.fraction)

    def backgrounds(self, size: str, split: str = "test", root=None):
        """LR forecasts of ``lead_hours`` from the coarse-grained truth, (traj, time, lev, y, x)."""
        key = ("bg", size, split, str(self.data_dir(size, root)), self.lead_hours)
        if key not in self._cache:
            f = self.fields(size, split, root)
            days = self.analysis_days(size, split)
            lead = self.lead_hours / 24
            q0 = f["q"].sel(time=days - lead).transpose("traj", "time", "lev", "y", "x").values.astype(np.float64)
            qb = W.forecast(W.lr_model(size), torch.as_tensor(q0), self.lead_hours).numpy()
            coords = {k: f[k] for k in ("traj", "lev", "y", "x")}
            coords["time"] = ("time", days, f["time"].attrs)
            self._cache[key] = xr.DataArray(qb, dims=("traj", "time", "lev", "y", "x"), coords=coords,
                                            attrs={"units": "s-1", "long_name": f"{self.lead_hours} h LR forecast from truth"})
        return self._cache[key]

    def case(self, size: str, i: int, split: str = "test", root=None, n_obs: int | None = None):
        """The case Dataset of the ``i``-th trajectory of a split (``n_obs`` rows per day; default the density)."""
        bg = self.backgrounds(size, split, root)
        tr = int(bg["traj"].values[i])
        rows = O.load_obs(self, size, split, self.scenario, root, traj=tr)
        days = bg["time"].values
        o = O.daily_subsample(rows, days, self.n_obs(size) if n_obs is None else n_obs, traj=tr)
        ds = xr.Dataset({"background": bg.isel(traj=i, drop=True),
                         **{f"obs_{k}": (("time", "obs"), o[k]) for k in ("x", "y", "value", "sigma")}})
        ds = ds.assign_coords(traj=tr)
        ds.attrs.update(L_km=W.domain_km(size), split=split, size=size, fraction=self.fraction,
                        lead_hours=self.lead_hours, obs_sigma_repr=self.sigma_repr(size, root))
        return ds

    def cases(self, size: str, root=None, split: str = "test"):
        for i in range(self.backgrounds(size, split, root).sizes["traj"]):
            yield problem_from_dataset(self.case(size, i, split, root))

    def _split(self, size: str, name: str, root=None):
        return OneStepSplit(self, size, name, root)

    # -- submissions ----------------------------------------------------------------------------
    def _coords(self, size: str, root=None, split: str = "test") -> dict:
        f = self.fields(size, split, root)
        coords = {k: f[k] for k in ("traj", "lev", "y", "x")}
        coords["time"] = ("time", self.analysis_days(size, split), f["time"].attrs)
        return coords

    def template(self, size: str, root=None):
        c = self._coords(size, root)
        shape = (len(c["traj"]), len(c["time"][1]), len(c["lev"]), len(c["y"]), len(c["x"]))
        lo, hi = self.q_bounds(size, root)
        q = xr.DataArray(np.full(shape, np.nan, dtype=np.float32), dims=("traj", "time", "lev", "y", "x"),
                         attrs={"units": "s-1", "long_name": "analysed potential vorticity anomaly",
                                "valid_min": lo, "valid_max": hi})
        return xr.Dataset({"q": q}, coords=c)

    def truth(self, size: str, root=None, split: str = "test"):
        f = self.fields(size, split, root)
        q = f["q"].sel(time=self.analysis_days(size, split)).transpose("traj", "time", "lev", "y", "x")
        return xr.Dataset({"q": q.astype(np.float64)}).load()

    def analysis_truth(self, size: str, root=None, split: str = "test"):
        """The true state at the analysis times (also in ``qg-fc48``)."""
        return QGDA.truth(self, size, root, split)

    # -- hours of lead gained ----------------------------------------------------------------------
    def lead_curve(self, size: str, root=None) -> dict:
        """SSH RMSE (m) of LR forecasts from the truth at leads 0..``lead_hours`` over the test analysis times
        (cached with the dataset): {"lead_h": [...], "rmse_m": [...], "sub_daily": bool, "note": str}. Hourly
        leads below one day, from the truth regenerated between the stored daily states; whole days beyond."""
        return O.cached(self, size, root, f"lead_curve_{self.lead_hours}h_stride{self.stride['test']}"
                        f"_tail{self.tail_days}_hourly.json", lambda: self._lead_curve(size, root))

    def _lead_curve(self, size: str, root=None) -> dict:
        f = self.fields(size, "test", root)
        q = f["q"].transpose("traj", "time", "lev", "y", "x").values
        days = self.analysis_days(size).astype(int)
        model = W.lr_model(size)
        truth_ssh = W.ssh_of_q_np(size, q[:, days])

        def rmse(q0, hours):
            fc = W.forecast(model, torch.as_tensor(q0.reshape(-1, *q.shape[2:]).astype(np.float64)), hours).numpy()
            return float(np.sqrt(((W.ssh_of_q_np(size, fc).reshape(truth_ssh.shape) - truth_ssh) ** 2).mean()))

        hours, note = self._sub_daily_truth(size, root, q, days)
        starts = [(0.0, None)] + ([(float(h), hours[:, :, h]) for h in range(1, 24)] if hours is not None else [])
        starts += [(24.0 * L, q[:, days - L]) for L in range(1, int(round(self.lead_hours / 24)) + 1)]
        return {"lead_h": [h for h, _ in starts], "rmse_m": [0.0 if q0 is None else rmse(q0, h) for h, q0 in starts],
                "sub_daily": hours is not None, "note": note}

    def _sub_daily_truth(self, size: str, root, q: np.ndarray, days: np.ndarray):
        """(truth (traj, case, 25, lev, y, x) at 0..24 h before each analysis day, note), regenerated with the
        dataset's recipe and checked against the stored states at 0 and 24 h; (None, why) where the
        regeneration does not give the stored bytes (another CPU, docs/worlds.md): then the curve is linear
        between days, which understates the error of sub-daily forecasts (the LR model's filter removes the
        truth's smallest scales within the first hour)."""
        from data_scripts.generate import regenerate_states

        per_hour = int(round(3600.0 / W.config(size)["dt"]))
        before = np.arange(25)
        steps = ((days[:, None] * 24 - before[None, :]) * per_hour).ravel()
        states = regenerate_states(self.world, size, "test", steps).reshape(q.shape[0], len(days), 25, *q.shape[2:])
        if not (np.array_equal(states[:, :, 0], q[:, days]) and np.array_equal(states[:, :, 24], q[:, days - 1])):
            return None, ("the regenerated truth differs from the stored states on this CPU: leads below one "
                          "day interpolated linearly between 0 and 24 h")
        return states, "hourly leads below one day from the regenerated truth (equal to the stored daily states)"

    def lead_scores(self, size: str, se_cases: np.ndarray, n_points: int, root=None) -> dict[str, Score]:
        """``equivalent_lead_h`` and ``lead_gained_h`` of analyses with per-case SSH squared-error sums."""
        curve = self.lead_curve(size, root)
        lead, err = np.asarray(curve["lead_h"]), np.maximum.accumulate(np.asarray(curve["rmse_m"]))

        def eq_lead(s):
            r = np.sqrt(np.asarray(s["se"]) / np.asarray(s["n"]))
            return np.where(r <= err[-1] * (1 + 1e-9), np.interp(r, err, lead), np.nan)

        v = {"se": se_cases, "n": np.full(len(se_cases), float(n_points))}
        value, lo, hi = metrics.bootstrap_sums(v, eq_lead)
        if not np.isfinite(value):
            why = "worse than the background: beyond the lead curve"
            return {"equivalent_lead_h": Score.undefined(why), "lead_gained_h": Score.undefined(why)}
        return {"equivalent_lead_h": Score(value, lo, hi),
                "lead_gained_h": Score(self.lead_hours - value, self.lead_hours - hi, self.lead_hours - lo,
                                       extra={"curve_lead_h": curve["lead_h"], "curve_rmse_m": curve["rmse_m"],
                                              "curve_sub_daily": curve["sub_daily"], "curve_note": curve["note"]})}

    # -- scoring ------------------------------------------------------------------------------------
    def score(self, pred, size: str, root=None, split: str = "test"):
        truth = self.truth(size, root, split)["q"]
        bg = self.backgrounds(size, split, root)
        out = qg_scoring.snapshot_scores(size, pred["q"], truth, bg)
        q = pred["q"].mean("member") if "member" in pred["q"].dims else pred["q"]
        ps = W.ssh_of_q_np(size, q.transpose("traj", "time", "lev", "y", "x").values)
        ts = W.ssh_of_q_np(size, truth.values)
        se = ((ps - ts) ** 2).reshape(-1, ts.shape[-2] * ts.shape[-1]).sum(1)
        out.update(self.lead_scores(size, se, ts.shape[-2] * ts.shape[-1], root))
        return out

    def info(self, size: str) -> dict:
        cfg = W.config(size)
        return {**super().info(size), "fraction": self.fraction, "obs_per_time": self.n_obs(size),
                "stride_days": self.stride["test"], "lead_hours": self.lead_hours, "nx_lr": cfg["nx_lr"],
                "obs_sigma_m": cfg["ssh_sigma"], "n_analysis_times": len(self.analysis_days(size)),
                "bootstrap": "analysis times (cases)"}


class OneStepSplit(W.Symmetric, Split):
    """A train or val split of a ``qg-da`` challenge (and ``qg-fc48``, which shares its cases)."""

    family = "analysis"

    def __init__(self, challenge: QGDA, size: str, name: str, root=None):
        self.challenge, self.size, self.name, self.root = challenge, size, name, root
        self.geometry = W.geometry(size)
        self.field_map = W.obs_field_map(size)

    def states(self) -> np.ndarray:
        t = self.challenge.analysis_truth(self.size, self.root, self.name)["q"].values
        return t.reshape(-1, *t.shape[2:])

    def pairs(self):
        bg = self.challenge.backgrounds(self.size, self.name, self.root).values
        return bg.reshape(-1, *bg.shape[2:]), self.states()

    def problems(self, trials=None):
        n = self.challenge.backgrounds(self.size, self.name, self.root).sizes["traj"]
        for i in range(n):
            case = self.challenge.case(self.size, i, self.name, self.root)
            if trials is not None:
                case = case.assign(background=case["background"].expand_dims(trial=np.arange(trials)))
            yield problem_from_dataset(case)

    def evaluate(self, predict, n_trials=None) -> np.ndarray:
        """SSH RMSE (m) of the analyses over the split's analysis times, per trial."""
        truth = self.challenge.analysis_truth(self.size, self.root, self.name)["q"]
        se, n = 0.0, 0
        for i, problem in enumerate(self.problems(n_trials)):
            q = predict(problem)["q"]
            q = q.mean("member") if "member" in q.dims else q
            lead = ("trial",) if "trial" in q.dims else ()
            a = W.ssh_of_q_np(self.size, q.transpose(*lead, "time", "lev", "y", "x").values)
            t = W.ssh_of_q_np(self.size, truth.isel(traj=i).values)
            e = (a - t) ** 2
            se = se + e.reshape(*e.shape[:len(lead)], -1).sum(-1)
            n += t.size
        return np.sqrt(np.atleast_1d(se) / n)

    def training_pairs(self):
        """Every analysis day of the split: background, all the day's random obs (nested order), target."""
        ch, size = self.challenge, self.size
        bg = ch.backgrounds(size, self.name, self.root)
        n_all = O.n_random(size, ch.pair_obs_fraction)
        parts = [ch.case(size, i, self.name, self.root, n_obs=n_all).assign(
            target=ch.analysis_truth(size, self.root, self.name)["q"].isel(traj=i, drop=True)).expand_dims("traj")
            .assign_coords(traj=[int(bg.traj[i])]) for i in range(bg.sizes["traj"])]
        ds = xr.concat(parts, dim="traj", coords="minimal").stack(sample=("traj", "time")).reset_index("sample")
        ds = ds.transpose("sample", ...)
        ds.attrs.update(parts[0].attrs, n_obs=ch.n_obs(size),
                        densities=[O.n_random(size, f) for f in DENSITY_SWEEP],
                        note="obs rows are in the nested subsample order: the first n_obs are this challenge's")
        return ds

    def pairs_key(self) -> dict:
        ch = self.challenge
        return {"pairs": "qg one-step", "split": self.name, "lead_hours": ch.lead_hours, "scenario": ch.scenario,
                "obs_fraction": ch.pair_obs_fraction if ch.scenario == "random" else ch.fraction,
                "stride": ch.stride[self.name], "densities": list(DENSITY_SWEEP)}

    def problem(self, samples, device="cpu"):
        return problem_from_dataset(samples.drop_vars("target", errors="ignore"), device=device)


class QGDASparse(QGDA):
    name = "qg-da-sparse"
    summary = "one-step DA: 7-day LR background + random SSH obs (0.05 per LR cell) -> analysis of q"
    fraction = 0.05


class QGDADense(QGDA):
    name = "qg-da-dense"
    summary = "one-step DA: 7-day LR background + random SSH obs (1 per LR cell) -> analysis of q"
    fraction = 1.0


class QGDA48h(QGDA):
    name = "qg-da-48h"
    summary = "one-step DA (DiffDA's setting): 48 h LR background + random SSH obs (0.2 per LR cell)"
    lead_hours = 48
    leaderboard_note = """
        Reading the table: DiffDA's setting, a 48 h background (µ ≈ 0.91): its error, the LR
        model's, is small and sits at the smallest LR scales, so few noisy point observations
        add little; dense observations (`qg-da-48h-dense`) are needed to gain hours of lead.
        *lead gained* is now read on an hourly lead curve below one day (docs/challenges.md):
        the ranked rows were scored on a line from 0 to 24 h, which understates the lead gained
        of any analysis better than a 24 h forecast from the truth (there, SSH error 0.98 mm at
        12 h, not the line's 0.54 mm). The `-hourly` rows, the same methods scored with the
        hourly curve on the AMD-made dataset, show it on `qg-da-48h-dense`: DiffDA, the U-Net and
        the GNN 44 h and 3D-Var 43 h gained, past the 36 h of Huang et al. (2024), where their
        analyses of the same error read 28–29 h on the line."""


class QGDA48hSparse(QGDA48h):
    name = "qg-da-48h-sparse"
    summary = "one-step DA (DiffDA's setting): 48 h LR background + random SSH obs (0.05 per LR cell)"
    fraction = 0.05


class QGDA48hDense(QGDA48h):
    name = "qg-da-48h-dense"
    summary = "one-step DA (DiffDA's setting): 48 h LR background + random SSH obs (1 per LR cell)"
    fraction = 1.0
