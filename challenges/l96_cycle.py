"""``l96-cycle``: autoregressive DA cycling on Lorenz-96 in the Sakov & Oke (2008) setup.

Setup (the literature's, by default): N = 40, F = 8, RK4 dt = 0.05 (6 h);
every variable observed every 0.05 time units with R = I; the truth is the
test split's trajectories (``fields.zarr`` x) and the observations its
``obs.zarr``. Every time step is one cycle (4 x 5000 cycles at size small).
Variants (constructor arguments): ``obs_fraction`` observes round(40 f)
variables, on a ``"fixed"`` network (evenly spaced indices, the same every
cycle) or a ``"moving"`` one (a new seeded random subset every cycle and
trajectory). Registered: ``l96-cycle-half`` (every other variable, fixed)
and ``l96-cycle-half-moving`` (a random half, new every cycle): the same
density on a fixed and on a moving network.

Cycling (``challenges.cycling``): the test trajectories run side by side as
independent experiments. Cycle 0's background is the training-split
climatological mean (a cold start, no ensemble); at every cycle the method
gets an ``AnalysisProblem`` (``cycle`` set) with the background
(traj, [member], i), the observations of that cycle (selection H, R = I), and
returns ``x(traj, [member], i)``; the harness runs the L96 model one step from
every member to the next cycle. Prediction: ``x(traj, time, i)`` (+ ``member``
for ensembles: stored in float32), optionally with ``restarted(traj, time)``
(bool: cycles at which the method blew up and the harness restarted it from the
cold start; ``bench run`` records them, and they count as diverged).

Scores, after a burn-in (100 / 500 / 1000 cycles at tiny / small / full, as
long as Sakov & Oke's 1000 x 0.05 spin-up at full):

- ``rmse``: the time mean of the instantaneous analysis RMSE over the 40
  variables (of the ensemble mean), averaged over trajectories: DAPPER's
  ``rmse.a`` and the number quoted in the literature (3D-Var ~0.41, ETKF
  N = 24 ~0.18, LETKF ~0.2, climatological OI ~0.95, climatology ~3.6);
- ``crps`` (fair; for a deterministic analysis its mean absolute error) and
  ``spread_skill`` (ensembles; sqrt((M+1)/M) spread / RMSE; with the rank histogram of
  the truth among the members after burn-in);
- ``divergence``: the fraction of trajectories whose 20-cycle (5 day) running
  mean analysis RMSE ever exceeds the climatological RMS deviation (the error
  of the training mean state, ~3.6), i.e. whose analysis was worse than
  climatology for 5 days; the first such cycle per trajectory is recorded
  (``cycles_to_divergence``, the run length where none); a cycle the harness had
  to restart after a blow-up counts as diverged;
- ``restarts``: the fraction of cycles restarted after a blow-up (0 for a stable method);
- ``lambda_x`` as in ``l96-da``, over the post-burn-in analyses.

Baselines and where their statistics come from (the train split; tuning on
val; never the test truth), with the analysis RMSE measured at size small
against the literature value: ``climatology`` the training mean state (3.64;
3.6); ``clim-oi`` the training mean and climatological covariance, no forecast
(0.949; 0.95); ``3dvar`` B = the climatological covariance of training
states, its scale tuned on val (0.408; 0.41); ``enkf`` ETKF with 24 members,
cold start drawn from the posterior with the training covariance, inflation
tuned on val (0.182; 0.18); ``letkf`` 8 members, Gaspari-Cohn localisation,
inflation and radius tuned on val (0.210; 0.2). All within 0.01 of the
literature.

Intervals: 95 % bootstrap over (trajectory x time block) units: post-burn-in
cycles are cut into blocks of 50 / 250 / 1000 cycles (12.5 / 62.5 / 250 days,
much longer than the ~1-day error decorrelation), 12 / 72 / 152 units at
tiny / small / full. ``divergence`` and ``lambda_x`` have none.
"""
from __future__ import annotations

from typing import ClassVar

import lazy_loader as lazy
import numpy as np

from . import cycling
from . import l96_world as W
from .base import Challenge, Metric, Score, bounds
from .problems import Split

torch = lazy.load("torch")
xr = lazy.load("xarray")
metrics = lazy.load("metrics")

MEMBER = "member"


class L96Cycle(Challenge):
    """Sakov & Oke (2008) cycling on Lorenz-96 (see module doc)."""

    name = "l96-cycle"
    world = "l96"
    family = "cycling"
    geometry_kind = "ring"
    observes = "state"
    summary = "Lorenz-96 DA cycling (Sakov & Oke 2008): all variables observed every 6 h, R = I"
    case_dim = "traj"
    variables = ("x",)
    optional_dims = ("member",)
    optional_vars = {"restarted": ("traj", "time")}
    geometry = W.GEOMETRY
    steps_per_cycle = 1
    burn_in: ClassVar[dict] = {"tiny": 100, "small": 500, "full": 1000}
    block: ClassVar[dict] = {"tiny": 50, "small": 250, "full": 1000}
    divergence_window = 20
    seed = 9603
    metrics = (
        Metric("rmse", "analysis RMSE", False),
        Metric("crps", "CRPS", False),
        Metric("spread_skill", "spread/skill", False, "{:.2f}", target=1.0),
        Metric("divergence", "diverged (fraction)", False, "{:.2f}"),
        Metric("restarts", "restarted cycles", False, "{:.3f}"),
        Metric("lambda_x", "λx (grid pts)", False, "{:.1f}"),
    )

    def __init__(self, obs_fraction: float = 1.0, network: str = "fixed"):
        if network not in ("fixed", "moving"):
            raise ValueError(f"network must be 'fixed' or 'moving', got {network!r}")
        self.obs_fraction = float(obs_fraction)
        self.network = network
        self._cache = {}

    def info(self, size: str) -> dict:
        return {**super().info(size), "obs_fraction": self.obs_fraction, "network": self.network,
                "obs_sigma": 1.0, "obs_sigma_repr": 0.0, "cycle_hours": 6 * self.steps_per_cycle,
                "burn_in_cycles": self.burn_in[size], "block_cycles": self.block[size],
                "cold_start": "training climatological mean"}

    def forecast(self, x):
        """The L96 model over one cycle, for states (..., 40)."""
        return W.model().step(x, self.steps_per_cycle)

    # -- data -------------------------------------------------------------------------------
    def split_data(self, size: str, split: str, root=None):
        """Truth ``x``, observations ``y`` (NaN where unobserved), ``obs_mask``, ``sigma`` of a split."""
        key = (str(self.data_dir(size, root)), split)
        if key not in self._cache:
            d = W.load_split(self, size, split, root)
            T, K, N = d["x"].shape
            rng = np.random.default_rng([self.seed, W.SPLIT_IDS[split]])
            mask = W.observed_mask(self.obs_fraction, self.network == "moving", T * K, N, rng).reshape(T, K, N)
            dims = ("traj", "time", "i")
            clim, _ = W.climatology(self, size, root)
            self._cache[key] = xr.Dataset(
                {"x": (dims, d["x"]), "y": (dims, np.where(mask, d["y"], np.nan)), "obs_mask": (dims, mask),
                 "sigma": ((), d["sigma"]),
                 "cold_start": (("i",), clim, {"long_name": "cycle-0 background: training climatological mean"})},
                coords={"traj": np.arange(T), "time": ("time", d["times"], d["time_attrs"]), "i": d["i"]})
        return self._cache[key]

    def _split(self, size: str, name: str, root=None):
        return L96CyclingSplit(self, size, name, root)

    def experiment(self, data) -> cycling.CyclingExperiment:
        """The cycling experiments on one split's data (``split_data``: test for scoring, val for tuning)."""
        T = data.sizes["traj"]
        b0 = torch.as_tensor(np.broadcast_to(data.cold_start.values, (T, data.sizes["i"])).copy())
        y, mask, x, times = data.y.values, data.obs_mask.values, data.x.values, data.time.values
        sigma = float(data.sigma)
        coords = {"traj": data.traj, "i": data.i}

        def make_problem(k: int, background, trials=None):
            yk, mk = y[:, k], mask[:, k]
            dims, shape = ("traj",), (T,)
            if trials is not None:
                yk, mk = np.broadcast_to(yk, (trials, *yk.shape)), np.broadcast_to(mk, (trials, *mk.shape))
                dims, shape = ("trial", "traj"), (trials, T)
            return W.problem(background, yk, mk, sigma, dims, shape, coords, cycle=k)

        return cycling.CyclingExperiment(
            background0=b0, make_problem=make_problem, forecast=self.forecast, n_cycles=len(times),
            exp_dims=("traj",), exp_shape=(T,), state_dims=W.GEOMETRY.state_dims, coords=coords, times=times,
            truth=lambda k: torch.as_tensor(x[:, k]), error=W.rmse_per_case, var="x",
            time_attrs=dict(data.time.attrs))

    def run(self, method, size: str, root=None, progress=None):
        data = self.split_data(size, "test", root)
        out = cycling.run(method.predict, self.experiment(data), store=True, progress=progress)
        pred = out[["x", "restarted"]]
        pred.attrs.update(predict_seconds=out.predict_seconds, forecast_seconds=out.forecast_seconds)
        return pred

    def progress_total(self, size: str, root=None) -> tuple[int, str]:
        return int(self.split_data(size, "test", root).sizes["time"]), "cycle"

    # -- format ---------------------------------------------------------------------------------
    def truth(self, size: str, root=None):
        d = self.split_data(size, "test", root)
        return xr.Dataset({"x": d.x.assign_attrs(long_name="analysis of the Lorenz-96 state", units="1")})

    def template(self, size: str, root=None):
        t = xr.full_like(self.truth(size, root), np.nan)
        lo, hi = bounds(W.load_split(self, size, "train", root)["x"])
        t["x"].attrs.update(valid_min=lo, valid_max=hi)
        return t

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, pred, size: str, root=None) -> dict[str, Score]:
        truth = self.truth(size, root).x
        x = pred["x"].assign_coords(traj=truth.traj, time=truth.time, i=truth.i)
        err = metrics.case_errors(x, truth, "i")
        se = err["se"].transpose("traj", "time").values
        rmse_t = np.sqrt(se)
        blocks = metrics.time_blocks(se.shape[1], self.burn_in[size], self.block[size])
        units = metrics.block_means(rmse_t, blocks)
        out = {"rmse": Score(units.mean(), *metrics.bootstrap_ci(units))}
        crps = metrics.block_means(err["crps"].transpose("traj", "time").values, blocks)
        out["crps"] = Score(crps.mean(), *metrics.bootstrap_ci(crps))
        if "var" in err:
            var = metrics.block_means(err["var"].transpose("traj", "time").values, blocks)
            post = dict(time=slice(self.burn_in[size], None))
            ranks = metrics.rank_histogram(x.isel(post), truth.isel(post))
            out["spread_skill"] = Score.of(metrics.intervals.spread_skill(metrics.block_means(se, blocks), var,
                                                                          err["members"]),
                                           rank_histogram=ranks.values.tolist())
        else:
            out["spread_skill"] = Score.undefined("deterministic")
        restarted = restarted_cycles(pred, se.shape)
        _, clim_rms = W.climatology(self, size, root)
        first = metrics.divergence_cycles(rmse_t, clim_rms, self.divergence_window, restarted)
        out["divergence"] = Score(float(np.mean(first < se.shape[1])),
                                  extra={"cycles_to_divergence": first.tolist(), "threshold": clim_rms,
                                         "window_cycles": self.divergence_window})
        out["restarts"] = Score(float(restarted.mean()), extra={"restarted_cycles": int(restarted.sum())})
        post = slice(self.burn_in[size], None)
        mean = x.mean(MEMBER) if MEMBER in x.dims else x
        lam, flag = metrics.ring_resolution(mean.isel(time=post), truth.isel(time=post), "i")
        out["lambda_x"] = Score(lam, extra={} if flag == "ok" else {"flag": flag})
        return out


def restarted_cycles(pred, shape) -> np.ndarray:
    """The prediction's ``restarted(traj, time)`` flags (all False when it has none), as a bool array."""
    if "restarted" in pred:
        return np.asarray(pred["restarted"].transpose("traj", "time").values, dtype=bool)
    return np.zeros(shape, dtype=bool)


class L96CyclingSplit(Split):
    """A train or val split of an ``l96-cycle`` challenge."""

    family = "cycling"
    geometry = W.GEOMETRY

    def __init__(self, challenge: L96Cycle, size: str, name: str, root=None):
        from .problems import FieldMap

        self.challenge, self.size, self.name, self.root = challenge, size, name, root
        self.field_map = FieldMap(W.GEOMETRY, None, "x")

    def _data(self):
        return self.challenge.split_data(self.size, self.name, self.root)

    def states(self) -> np.ndarray:
        x = self._data().x.values
        return x.reshape(-1, x.shape[-1])

    def forecast_errors(self) -> np.ndarray:
        x = self._data().x.values
        fc = self.challenge.forecast(torch.as_tensor(x[:, :-1].reshape(-1, x.shape[-1]))).numpy()
        return fc - x[:, 1:].reshape(-1, x.shape[-1])

    def experiment(self):
        return self.challenge.experiment(self._data())

    def evaluate(self, predict, n_trials=None) -> np.ndarray:
        """Time-mean analysis RMSE after the challenge's burn-in on this split's cycling runs, per trial."""
        return cycling.trial_losses(predict, self.experiment(), n_trials, self.challenge.burn_in[self.size])

    #: range of the std of the perturbation of the truth that the training backgrounds are forecast
    #: from, drawn log-uniformly per sample: from below ETKF's cycled analysis error (0.18) to above
    #: climatological OI's (0.95), the errors a cycling analysis may meet, its own included
    pair_sigma0 = (0.1, 1.5)

    def training_pairs(self):
        """Every cycle of the split as a sample: background = one-cycle forecast of the truth perturbed
        by N(0, s² I), s drawn log-uniformly in ``pair_sigma0`` per sample, the cycle's observations,
        target = the true state.

        A cycling method meets backgrounds that are one-cycle forecasts of its own analyses: their
        errors are flow-dependent, and their size is the method's own (0.2-0.4 for good filters here,
        against ``l96-da``'s 48 h errors of about 0.9). Forecasting a perturbed truth by one cycle gives
        errors of that kind without tying the data to any one filter; a range of sizes, rather than one,
        lets a network learn how far to trust a background from how far it lies from the observations,
        so that an analysis that drifts in cycling meets backgrounds like those it was trained on
        (trained at s = 0.3 only, the networks' cycled errors settled at 0.8-0.9 in cycling, where
        every background was worse than any they had seen: docs/challenges.md).
        """
        d = self._data()
        T, K, N = d.x.shape
        rng = np.random.default_rng([self.challenge.seed + 7, W.SPLIT_IDS[self.name]])
        x = d.x.values
        lo, hi = self.pair_sigma0
        s = np.exp(rng.uniform(np.log(lo), np.log(hi), ((K - 1) * T, 1)))
        x0 = x[:, :-1].reshape(-1, N) + s * rng.standard_normal(((K - 1) * T, N))
        xb = self.challenge.forecast(torch.as_tensor(x0)).numpy()
        sel = (slice(None), slice(1, None))
        ds = xr.Dataset({"background": (("sample", "i"), xb), "y": (("sample", "i"), d.y.values[sel].reshape(-1, N)),
                         "obs_mask": (("sample", "i"), d.obs_mask.values[sel].reshape(-1, N)), "sigma": d.sigma,
                         "target": (("sample", "i"), x[sel].reshape(-1, N))},
                        coords={"i": d.i, "traj": ("sample", np.repeat(np.arange(T), K - 1)),
                                "time": ("sample", np.tile(d.time.values[1:], T))})
        ds.attrs.update(split=self.name, background=f"one-cycle L96 forecast of truth + N(0, s^2), s log-uniform in "
                                                    f"[{lo}, {hi}]")
        return ds

    def pairs_key(self) -> dict:
        ch = self.challenge
        return {"pairs": "l96 cycling", "split": self.name, "obs_fraction": ch.obs_fraction, "network": ch.network,
                "sigma0_range": list(self.pair_sigma0)}

    def problem(self, samples, device="cpu"):
        return W.problem_from_dataset(samples.drop_vars("target", errors="ignore"), device=device)


#: the registered cycling variants: all variables observed; every other variable (fixed); half of
#: the variables, a new random half every cycle (moving): the same density, fixed vs moving network
class L96CycleHalf(L96Cycle):
    name = "l96-cycle-half"
    summary = "Lorenz-96 DA cycling, every other variable observed every 6 h (a fixed network), R = I"
    leaderboard_note = """
        Reading the table: half the variables observed, the same ones every cycle. Static-B
        3D-Var loses track for stretches (its running error passes climatology's on every test
        trajectory) where it holds on `l96-cycle-half-moving`; the global 24-member ETKF (no
        localisation) diverges on one of the four test trajectories on both networks, while the
        localised LETKF never does."""

    def __init__(self):
        super().__init__(obs_fraction=0.5, network="fixed")


class L96CycleHalfMoving(L96Cycle):
    name = "l96-cycle-half-moving"
    summary = "Lorenz-96 DA cycling, a new random half of the variables observed every 6 h (moving), R = I"
    leaderboard_note = """
        Reading the table: the density of `l96-cycle-half` on a moving network. Every variable
        is observed every few cycles, which static-B 3D-Var needs to stay on track; compare
        with the fixed network."""

    def __init__(self):
        super().__init__(obs_fraction=0.5, network="moving")
