"""``qg-cycle``: daily DA cycling in the two-layer QG world.

Cycling (``challenges.cycling``): every test trajectory is one experiment;
all run side by side. Cycle k is day k of the trajectory (60 cycles at tiny,
360 at small). At every cycle the method gets an ``AnalysisProblem`` with

* ``background(traj, [member], lev, y, x)``: PV q (1/s); at cycle 0 a cold
  start, the training climatological mean (constant in space by homogeneity,
  0 up to round-off), without members; afterwards the LR model's 24 h
  forecast (no closure, dt = 1 h) of the previous analysis, every member;
* observations of SSH at day k: ``obs_x``, ``obs_y`` (km), ``obs_value``,
  ``obs_sigma`` (m), dims (traj, obs): 0.2 per LR grid cell, point samples of
  the HR field + noise. ``qg-cycle``: at random positions, new each day (a
  moving network; the same seeded subsample of the ``random`` store as
  ``qg-da``). ``qg-cycle-fixed``: the same number of positions, drawn once per
  trajectory and observed every day (a fixed network, like moorings: the
  ``fixed`` store), so the unobserved gaps never close and the filter must
  carry information into them by the dynamics alone. Their error relative to
  the LR state is the instrument sigma plus the representativeness error of
  the scenario (``challenges.qg_obs``): R = sigma² + sigma_r²;
* ``cycle``, the cycle index;

and returns ``q(traj, [member], lev, y, x)``. Ensemble methods create their
ensemble at cycle 0 (e.g. from training states). The observation operator is
the challenge's exact SSH operator (``qg_common``).

Prediction: ``q(traj, time, lev, y, x)``, the analyses of every cycle (+ an
optional ``member`` dim: scored through the ensemble mean, plus CRPS and
spread/skill of SSH), optionally with ``restarted(traj, time)`` (cycles the
harness restarted after a blow-up; they count as diverged).

Validation (tuning): ``fit``'s val split cycles the first 150 days of the val
trajectories (all 60 at tiny).

Training pairs (learners): the qg-da pairs with this challenge's network: for
every day of the split from day 7, the LR model's 7-day forecast from the
truth as background, the day's observations and the true state. A cycled
background is a 24 h forecast of the previous analysis, whose error for the
classical filters here (µ about 0.8) is that of a forecast from the truth of
about a week: the 7-day pairs give background errors of that size and kind
(grown model error) without tying the training data to one filter.

Scores, after a burn-in (10 / 60 / 60 cycles at tiny / small / full):

- ``rmse``: time mean of the per-cycle analysis SSH RMSE (m), averaged over
  trajectories (primary);
- ``mu``: µ(RMSE) of SSH over the post-burn-in analyses; ``mu_q1``: of q1;
- ``lambda_iso_km``: isotropic effective resolution of the SSH analyses;
- ``divergence``: fraction of trajectories whose 10-cycle running-mean SSH
  RMSE ever exceeds the climatological RMS of SSH (the error of the
  climatology), or that had to be restarted after a blow-up, with the first
  such cycle per trajectory (``cycles_to_divergence``; the run length where
  none); ``restarts``: the fraction of cycles restarted;
- ``crps`` and ``spread_skill`` of SSH for ensembles.

Intervals: 95 % bootstrap over (trajectory x block of 10 / 30 / 30 cycles).
"""
from __future__ import annotations

from typing import ClassVar

import lazy_loader as lazy
import numpy as np

from . import cycling
from . import qg_obs as O
from . import qg_scoring
from . import qg_world as W
from .base import Metric, Score
from .l96_cycle import restarted_cycles
from .problems import Split
from .qg_base import STATE, QGChallenge, problem_from_arrays

torch = lazy.load("torch")
xr = lazy.load("xarray")
metrics = lazy.load("metrics")

NETWORKS = {"random": "moving (random positions, new each day)",
            "fixed": "fixed (random positions drawn once per trajectory, observed every day)"}


class QGCycle(QGChallenge):
    name = "qg-cycle"
    family = "cycling"
    summary = "daily QG DA cycling with the LR model: random SSH obs (0.2 per LR cell, moving)"
    leaderboard_note = """
        Reading the table: *background* is the free run of the LR model from the cold start, the
        training mean, which has no eddies and stays a steady state: it scores exactly as
        climatology. A method must synchronise the LR model with the truth from 0.2 SSH points
        per LR cell a day; the LR model's own error (no closure) keeps growing between analyses.
        The learned analyses (`ae`, `gnn`, `diffda`) learned from the one-step `qg-da` pairs (a
        7-day forecast from the truth as background) and lose the truth after 18-31 daily cycles
        (as in the DiffDA paper, 10-20): the cycle at which each test trajectory's 10-cycle running
        RMSE first passes climatology's is in the results file (`cycles_to_divergence`)."""
    case_dim = "traj"
    variables = ("q",)
    optional_dims = ("member",)
    optional_vars = {"restarted": ("traj", "time")}
    fraction = 0.2
    cycle_hours = 24
    burn_in: ClassVar[dict] = {"tiny": 10, "small": 60, "full": 60}
    block: ClassVar[dict] = {"tiny": 10, "small": 30, "full": 30}
    #: cycles of the val runs used for tuning (the whole val split at tiny)
    tuning_cycles: ClassVar[dict] = {"tiny": 60, "small": 150, "full": 150}
    divergence_window = 10
    metrics = (
        Metric("rmse", "analysis RMSE SSH (m)", False, "{:.5f}"),
        Metric("mu", "µ(RMSE) SSH", True, "{:.3f}"),
        Metric("lambda_iso_km", "λiso (km)", False, "{:.0f}"),
        Metric("mu_q1", "µ q1", True, "{:.3f}"),
        Metric("divergence", "diverged (fraction)", False, "{:.2f}"),
        Metric("restarts", "restarted cycles", False, "{:.3f}"),
        Metric("crps", "CRPS SSH (m)", False, "{:.5f}"),
        Metric("spread_skill", "spread/skill", False, "{:.2f}", target=1.0),
    )

    #: the observation store: "random" (moving network) or "fixed"
    network = "random"

    def __init__(self, fraction: float | None = None):
        if fraction is not None:
            self.fraction = float(fraction)
        self._cache = {}
        self.description = __doc__

    @property
    def scenario(self) -> str:
        return self.network

    def info(self, size: str) -> dict:
        cfg = W.config(size)
        return {**super().info(size), "fraction": self.fraction, "obs_per_cycle": self.n_obs(size),
                "network": NETWORKS[self.network], "cycle_hours": self.cycle_hours,
                "n_cycles": cfg["n_days"], "burn_in_cycles": self.burn_in[size], "block_cycles": self.block[size],
                "obs_sigma_m": cfg["ssh_sigma"], "cold_start": "training climatological mean (homogeneous)"}

    def n_obs(self, size: str) -> int:
        return O.n_random(size, self.fraction)

    # -- data ---------------------------------------------------------------------------------------
    def climatology(self, size: str, root=None) -> tuple[np.ndarray, float]:
        """(cold-start state (2, ny, nx): the training mean per layer, constant in space; SSH RMS)."""
        key = ("clim", size, str(self.data_dir(size, root)))
        if key not in self._cache:
            tr = self.open(size, "train", root=root)
            q = tr["q"].values.astype(np.float64)
            mean = q.mean((0, 1, 3, 4))
            ssh = tr["ssh"].values.astype(np.float64)
            rms = float(np.sqrt(((ssh - ssh.mean()) ** 2).mean()))
            n = W.lr_nx(size)
            self._cache[key] = (np.broadcast_to(mean[:, None, None], (2, n, n)).copy(), rms)
        return self._cache[key]

    def split_data(self, size: str, split: str, root=None) -> dict:
        """Truth q (traj, time, lev, y, x) and the observations (traj, time, obs) of a split."""
        key = (size, split, str(self.data_dir(size, root)))
        if key not in self._cache:
            f = self.fields(size, split, root)
            q = f["q"].transpose("traj", "time", "lev", "y", "x").values.astype(np.float64)
            days = f["time"].values
            obs = {k: [] for k in ("x", "y", "value", "sigma")}
            for tr in f["traj"].values:
                rows = O.load_obs(self, size, split, self.network, root, traj=int(tr))
                o = O.daily_subsample(rows, days, self.n_obs(size), traj=int(tr))
                for k in obs:
                    obs[k].append(o[k])
            self._cache[key] = {"q": q, "obs": {k: np.stack(v) for k, v in obs.items()}, "time": days,
                                "traj": f["traj"].values, "time_attrs": dict(f["time"].attrs),
                                "coords": {k: f[k] for k in ("traj", "lev", "y", "x")},
                                "sigma_r": self.sigma_repr(size, root)}
        return self._cache[key]

    def forecast(self, q, size: str):
        return W.forecast(W.lr_model(size), q, self.cycle_hours)

    def experiment(self, size: str, split: str = "test", root=None) -> cycling.CyclingExperiment:
        """The cycling experiments of a split (test for scoring, val for tuning)."""
        d = self.split_data(size, split, root)
        clim, _ = self.climatology(size, root)
        T = len(d["traj"])
        b0 = torch.as_tensor(np.broadcast_to(clim, (T, *clim.shape)).copy())
        obs, times, q, sr = d["obs"], d["time"], d["q"], d["sigma_r"]
        coords = {k: d["coords"][k] for k in ("traj", *STATE)}
        model = W.lr_model(size)

        def make_problem(k: int, background, trials=None):
            o = {v: obs[v][:, k] for v in ("x", "y", "value", "sigma")}
            dims, shape = ("traj",), (T,)
            if trials is not None:
                o = {v: np.broadcast_to(a, (trials, *a.shape)).reshape(trials * T, -1) for v, a in o.items()}
                dims, shape = ("trial", "traj"), (trials, T)
            return problem_from_arrays(size, background, o["x"], o["y"], o["value"], o["sigma"], sr, dims, shape,
                                       coords, cycle=k)

        def error(x, truth):
            return ((W.ssh_of_q(model, x) - W.ssh_of_q(model, truth)) ** 2).mean((-2, -1)).sqrt().numpy()

        return cycling.CyclingExperiment(
            background0=b0, make_problem=make_problem, forecast=lambda x: self.forecast(x, size),
            n_cycles=len(times), exp_dims=("traj",), exp_shape=(T,), state_dims=STATE, coords=coords, times=times,
            truth=lambda k: torch.as_tensor(q[:, k]), error=error, var="q", time_attrs=d["time_attrs"])

    def _split(self, size: str, name: str, root=None):
        return QGCyclingSplit(self, size, name, root)

    def run(self, method, size: str, root=None, progress=None):
        out = cycling.run(method.predict, self.experiment(size, "test", root), store=True, progress=progress)
        pred = out[["q", "restarted"]]
        pred.attrs.update(predict_seconds=out.attrs["predict_seconds"], forecast_seconds=out.attrs["forecast_seconds"])
        return pred

    def progress_total(self, size: str, root=None) -> tuple[int, str]:
        return int(W.config(size)["n_days"]), "cycle"

    # -- format ------------------------------------------------------------------------------------
    def truth(self, size: str, root=None, split: str = "test"):
        f = self.fields(size, split, root)
        q = f["q"].transpose("traj", "time", "lev", "y", "x").astype(np.float64)
        return xr.Dataset({"q": q.assign_attrs(long_name="analysed potential vorticity anomaly", units="s-1")}).load()

    def template(self, size: str, root=None):
        f = self.fields(size, "test", root)
        shape = tuple(f.sizes[d] for d in ("traj", "time", "lev", "y", "x"))
        lo, hi = self.q_bounds(size, root)
        q = xr.DataArray(np.full(shape, np.nan, dtype=np.float32), dims=("traj", "time", "lev", "y", "x"),
                         attrs={"units": "s-1", "long_name": "analysed potential vorticity anomaly",
                                "valid_min": lo, "valid_max": hi})
        return xr.Dataset({"q": q}, coords={k: f[k] for k in ("traj", "time", "lev", "y", "x")})

    # -- scoring -----------------------------------------------------------------------------------
    def score(self, pred, size: str, root=None, split: str = "test"):
        pred_q, truth_q = pred["q"], self.truth(size, root, split)["q"]
        ens = None
        if "member" in pred_q.dims:
            ens = pred_q
            pred_q = pred_q.mean("member")
        pred_q = pred_q.transpose("traj", "time", "lev", "y", "x")
        ntr, nt = truth_q.sizes["traj"], truth_q.sizes["time"]
        ps = W.ssh_of_q_np(size, pred_q.values)
        ts = W.ssh_of_q_np(size, truth_q.values)
        rmse_t = np.sqrt(((ps - ts) ** 2).mean((-2, -1)))  # (traj, time)
        burn = self.burn_in[size]
        blocks = metrics.time_blocks(nt, burn, self.block[size])
        units_rmse = metrics.block_means(rmse_t, blocks)
        out = {"rmse": Score(float(units_rmse.mean()), *metrics.bootstrap_ci(units_rmse))}
        post = slice(burn, None)
        pc = qg_scoring._as_cases(size, pred_q.isel(time=post))[0]
        tc = qg_scoring._as_cases(size, truth_q.isel(time=post))[0]
        n_post = nt - burn
        units = [tr * n_post + np.arange(b.start - burn, b.stop - burn) for tr in range(ntr) for b in blocks]
        out["mu"] = qg_scoring.rmse_family(pc, tc, units)["mu"]
        out.update(qg_scoring.isotropic_score(pc, tc, units))
        q1 = qg_scoring.rmse_family(qg_scoring.stack_cases(pred_q.isel(time=post, lev=0, drop=True)),
                                    qg_scoring.stack_cases(truth_q.isel(time=post, lev=0, drop=True)), units)
        out["mu_q1"] = q1["mu"]
        restarted = restarted_cycles(pred, rmse_t.shape)
        _, clim_rms = self.climatology(size, root)
        first = metrics.divergence_cycles(rmse_t, clim_rms, self.divergence_window, restarted)
        out["divergence"] = Score(float(np.mean(first < nt)),
                                  extra={"cycles_to_divergence": first.tolist(), "threshold_m": clim_rms,
                                         "window_cycles": self.divergence_window})
        out["restarts"] = Score(float(restarted.mean()), extra={"restarted_cycles": int(restarted.sum())})
        if ens is not None:
            es, _, _ = qg_scoring._as_cases(size, ens.isel(time=post))
            out.update(qg_scoring.ensemble_scores(es, tc))
        else:
            out["crps"] = Score.undefined("deterministic")
            out["spread_skill"] = Score.undefined("deterministic")
        return out


class QGCyclingSplit(W.Symmetric, Split):
    """A train or val split of a ``qg-cycle`` challenge."""

    family = "cycling"

    def __init__(self, challenge: QGCycle, size: str, name: str, root=None):
        self.challenge, self.size, self.name, self.root = challenge, size, name, root
        self.geometry = W.geometry(size)
        self.field_map = W.obs_field_map(size)

    def _q(self) -> np.ndarray:
        return self.challenge.split_data(self.size, self.name, self.root)["q"]

    def states(self) -> np.ndarray:
        q = self._q()
        return q.reshape(-1, *q.shape[2:])

    def forecast_errors(self, stride_days: int = 3, max_samples: int = 600) -> np.ndarray:
        """24 h LR forecasts from the true states minus the truth a day later, start days every ``stride_days``."""
        q = self._q()
        starts = np.arange(0, q.shape[1] - 1, stride_days)
        if len(starts) * q.shape[0] > max_samples:
            starts = starts[np.linspace(0, len(starts) - 1, max(1, max_samples // q.shape[0])).round().astype(int)]
        q0 = torch.as_tensor(q[:, starts].reshape(-1, *q.shape[2:]))
        fc = self.challenge.forecast(q0, self.size).numpy()
        return fc - q[:, starts + 1].reshape(-1, *q.shape[2:])

    def evaluate(self, predict, n_trials=None) -> np.ndarray:
        """Time-mean SSH analysis RMSE (m) after burn-in of val cycling runs (``tuning_cycles``), per trial."""
        ch = self.challenge
        return cycling.trial_losses(predict, ch.experiment(self.size, self.name, self.root), n_trials,
                                    ch.burn_in[self.size], n_cycles=ch.tuning_cycles[self.size])

    def _pairs_split(self):
        from .qg_da import QGDA, OneStepSplit

        src = QGDA(self.challenge.fraction)
        src.scenario = self.challenge.network
        src.pair_obs_fraction = self.challenge.fraction if self.challenge.network == "fixed" else 1.0
        return OneStepSplit(src, self.size, self.name, self.root)

    def pairs_key(self) -> dict:
        return self._pairs_split().pairs_key()

    def pairs(self):
        return self._pairs_split().pairs()

    def training_pairs(self):
        ds = self._pairs_split().training_pairs()
        ds.attrs.update(background="7-day LR forecast from the truth (see challenges/qg_cycle.py)",
                        network=NETWORKS[self.challenge.network])
        return ds

    def problem(self, samples, device="cpu"):
        from .qg_base import problem_from_dataset

        return problem_from_dataset(samples.drop_vars("target", errors="ignore"), device=device)


class QGCycleFixed(QGCycle):
    name = "qg-cycle-fixed"
    summary = "daily QG DA cycling with the LR model: SSH obs at 0.2 per LR cell on a fixed network"
    leaderboard_note = """
        Reading the table: the same cycling as `qg-cycle`, but the 0.2 SSH points per LR cell
        never move (about 70 km apart at small), so the gaps between them are never observed
        and must be filled by the dynamics. Neither classical baseline holds on to the truth
        from such a network: both rows diverge and end no better than the floors. Static-B
        3D-Var puts its increments at the same points every day; tuned on val (the first 150
        days) it tracks the truth for about two months (error about 0.6 of the climatological
        RMS at small), but the increments keep adding energy the LR model does not remove (the
        analysed SSH variance grows to about 3 times the truth's within the year), and the
        error passes climatology after about 5 months. Larger B scales drift sooner, also with
        exact, noise-free synthetic observations at tiny. The 20-member LETKF ends
        overdispersive. The learned analyses fare worse than on the moving network, as in the
        DiffDA paper: `gnn` leaves the truth after 13-14 cycles (18-19 moving), `ae` and
        `diffda` from the first 10-cycle window on. The variant is kept as an open problem: a
        method must carry information into the gaps without pumping energy into the observed
        points.
        *background* is the eddy-free free run, identical to climatology."""
    network = "fixed"

