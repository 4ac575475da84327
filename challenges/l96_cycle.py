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
gets ``background(traj, [member], i)``, ``y(traj, i)`` (NaN where not
observed), ``obs_mask(traj, i)``, ``sigma`` and the scalar coordinates
``time`` and ``cycle``, and returns ``x(traj, [member], i)``; the harness runs
the L96 model one step from every member to the next cycle. Prediction:
``x(traj, time, i)`` (+ ``member`` for ensembles: stored in float32).

Scores, after a burn-in (100 / 500 / 1000 cycles at tiny / small / full, as
long as Sakov & Oke's 1000 x 0.05 spin-up at full):

- ``rmse``: the time mean of the instantaneous analysis RMSE over the 40
  variables (of the ensemble mean), averaged over trajectories: DAPPER's
  ``rmse.a`` and the number quoted in the literature (3D-Var ~0.41, ETKF
  N = 24 ~0.18, LETKF ~0.2, climatological OI ~0.95, climatology ~3.6);
- ``crps`` (fair; for a deterministic analysis its mean absolute error) and
  ``spread_skill`` (ensembles; sqrt((M+1)/M) spread / RMSE);
- ``divergence``: the fraction of trajectories whose 20-cycle (5 day) running
  mean analysis RMSE ever exceeds the climatological RMS deviation (the error
  of the training mean state, ~3.6), i.e. whose analysis was worse than
  climatology for 5 days; the first such cycle per trajectory is recorded
  (``cycles_to_divergence``, the run length where none);
- ``lambda_x`` as in ``l96-da``, over the post-burn-in analyses.

Baselines and where their statistics come from (the train split; tuning on
val; never the test truth), with the analysis RMSE measured at size small
against the literature value: ``climatology`` the training mean state (3.64;
3.6); ``oi`` the training mean and climatological covariance, no forecast
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

import numpy as np
import torch
import xarray as xr

import metrics
from data_scripts.l96 import Lorenz96

from . import cycling
from .base import Challenge, Metric, Score
from .l96_da import (
    MEMBER,
    SPLIT_IDS,
    climatology,
    lambda_x,
    load_split,
    observed_mask,
    pointwise_errors,
    spread_skill_score,
)


class L96Cycle(Challenge):
    """Sakov & Oke (2008) cycling on Lorenz-96 (see module doc)."""

    name = "l96-cycle"
    world = "l96"
    summary = "Lorenz-96 DA cycling (Sakov & Oke 2008): all variables observed every 6 h, R = I"
    case_dim = "traj"
    variables = ("x",)
    #: dims a prediction may add to the template's (an ensemble; scored with CRPS and spread/skill)
    optional_dims = ("member",)
    state_dims = ("i",)
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
        Metric("lambda_x", "λx (grid pts)", False, "{:.1f}"),
    )

    def __init__(self, obs_fraction: float = 1.0, network: str = "fixed"):
        if network not in ("fixed", "moving"):
            raise ValueError(f"network must be 'fixed' or 'moving', got {network!r}")
        self.obs_fraction = float(obs_fraction)
        self.network = network
        self.model = Lorenz96()
        self._cache = {}

    def info(self, size: str) -> dict:
        return {**super().info(size), "obs_fraction": self.obs_fraction, "network": self.network,
                "obs_sigma": 1.0, "cycle_hours": 6 * self.steps_per_cycle, "burn_in_cycles": self.burn_in[size],
                "block_cycles": self.block[size], "cold_start": "training climatological mean"}

    def forecast(self, x: torch.Tensor) -> torch.Tensor:
        """The L96 model over one cycle, for states (..., 40)."""
        return self.model.step(x, self.steps_per_cycle)

    # -- data -----------------------------------------------------------------
    def split_data(self, size: str, split: str, root=None) -> xr.Dataset:
        """Truth ``x``, observations ``y`` (NaN where unobserved), ``obs_mask``, ``sigma`` of a split."""
        key = (str(self.data_dir(size, root)), split)
        if key not in self._cache:
            d = load_split(self, size, split, root)
            T, K, N = d["x"].shape
            rng = np.random.default_rng([self.seed, SPLIT_IDS[split]])
            mask = observed_mask(self.obs_fraction, self.network == "moving", T * K, N, rng).reshape(T, K, N)
            dims = ("traj", "time", "i")
            clim, _ = climatology(self, size, root)
            self._cache[key] = xr.Dataset(
                {"x": (dims, d["x"]), "y": (dims, np.where(mask, d["y"], np.nan)), "obs_mask": (dims, mask),
                 "sigma": ((), d["sigma"]),
                 "cold_start": (("i",), clim, {"long_name": "cycle-0 background: training climatological mean"})},
                coords={"traj": np.arange(T), "time": ("time", d["times"], d["time_attrs"]), "i": d["i"]})
        return self._cache[key]

    def train_val(self, size: str, root=None):
        return self.split_data(size, "train", root), self.split_data(size, "val", root)

    def problem(self, data: xr.Dataset) -> cycling.CyclingProblem:
        """The cycling experiments on one split's data (``split_data``: test for scoring, val for tuning)."""
        b0 = data.cold_start.broadcast_like(data.x.isel(time=0)).transpose("traj", "i").copy()
        y, mask, x, times = data.y.values, data.obs_mask.values, data.x.values, data.time.values
        sigma = float(data.sigma)

        def make_case(k: int, background: xr.DataArray) -> xr.Dataset:
            return xr.Dataset({"background": background, "y": (("traj", "i"), y[:, k]),
                               "obs_mask": (("traj", "i"), mask[:, k]), "sigma": ((), sigma)},
                              coords={"time": times[k], "cycle": k})

        def truth(k: int) -> xr.DataArray:
            return xr.DataArray(x[:, k], dims=("traj", "i"))

        return cycling.CyclingProblem(background0=b0, make_case=make_case, forecast=self.forecast,
                                      n_cycles=len(times), state_dims=self.state_dims, times=times,
                                      truth=truth, time_attrs=dict(data.time.attrs))

    def run(self, method, size: str, root=None, progress=None) -> xr.Dataset:
        data = self.split_data(size, "test", root)
        out = cycling.run(method.predict, self.problem(data), store=True, progress=progress,
                          progress_total=data.sizes["traj"])
        pred = out[["x"]]
        pred.attrs.update(restarted_cycles=int(out.restarted.sum()), predict_seconds=out.predict_seconds,
                          forecast_seconds=out.forecast_seconds)
        return pred

    # -- format -------------------------------------------------------------------
    def truth(self, size: str, root=None) -> xr.Dataset:
        d = self.split_data(size, "test", root)
        return xr.Dataset({"x": d.x.assign_attrs(long_name="analysis of the Lorenz-96 state", units="1")})

    def template(self, size: str, root=None) -> xr.Dataset:
        return xr.full_like(self.truth(size, root), np.nan)

    # -- scoring -------------------------------------------------------------------
    def score(self, pred: xr.Dataset, size: str, root=None) -> dict[str, Score]:
        truth = self.truth(size, root).x
        x = pred["x"].assign_coords(traj=truth.traj, time=truth.time, i=truth.i)
        err = pointwise_errors(x, truth, self.state_dims)
        se = err["se"].transpose("traj", "time").values
        rmse_t = np.sqrt(se)
        blocks = cycling.time_blocks(se.shape[1], self.burn_in[size], self.block[size])
        units = cycling.block_means(rmse_t, blocks)
        out = {"rmse": Score(units.mean(), *metrics.bootstrap_ci(units))}
        crps = cycling.block_means(err["crps"].transpose("traj", "time").values, blocks)
        out["crps"] = Score(crps.mean(), *metrics.bootstrap_ci(crps))
        if "var" in err:
            var = cycling.block_means(err["var"].transpose("traj", "time").values, blocks)
            out["spread_skill"] = spread_skill_score(cycling.block_means(se, blocks), var, err["members"])
        else:
            out["spread_skill"] = Score(float("nan"), extra={"flag": "deterministic"})
        _, clim_rms = climatology(self, size, root)
        first = cycling.divergence_cycles(rmse_t, clim_rms, self.divergence_window)
        out["divergence"] = Score(float(np.mean(first < se.shape[1])),
                                  extra={"cycles_to_divergence": first.tolist(), "threshold": clim_rms,
                                         "window_cycles": self.divergence_window})
        post = slice(self.burn_in[size], None)
        mean = x.mean(MEMBER) if MEMBER in x.dims else x
        out["lambda_x"] = lambda_x(mean.isel(time=post), truth.isel(time=post))
        return out


#: the registered cycling variants: all variables observed; every other variable (fixed); half of
#: the variables, a new random half every cycle (moving): the same density, fixed vs moving network
L96_CYCLING = ("l96-cycle", "l96-cycle-half", "l96-cycle-half-moving")


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
