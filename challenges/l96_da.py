"""``l96-da``: one-step data assimilation on Lorenz-96 (N = 40, F = 8).

The model is perfect (the truth is the same RK4 model), so a 48 h forecast
from the exact truth has no error. The background is therefore a 48 h
(8-step) forecast from a perturbed truth::

    xb(t) = M_48h( x(t - 48 h) + eps ),   eps ~ N(0, sigma0² I),  sigma0 = 0.4

sigma0 = 0.4 is about the analysis error of cycled 3D-Var in the Sakov & Oke
(2008) setup, so the background is a 48 h forecast from a 3D-Var-quality
analysis; its error has grown along the unstable directions of the flow
(flow-dependent) to an RMSE of about 0.9, comparable to the observation error
(sigma = 1), so background and observations carry similar weight. eps is
seeded per split and trajectory: the same cases every time.

Observations: the dataset's observations of x(t) (R = I), of a fraction of
the 40 variables. Densities swept: 100 %, 50 %, 25 %, 10 % (40, 20, 10, 4
observed variables). Network ``"random"`` (default): a new seeded random
subset for every case; ``"fixed"``: evenly spaced indices
(``data_scripts.obs.l96_indices``), the same for all cases.

Cases: analysis times every ``stride`` steps (5 days, longer than the error
decorrelation time, on test and val; every 24 h on train for more learning
data) from t = 48 h to 48 h before the end of each trajectory (so ``l96-fc48``
verifies the same cases), for every density: ``case`` is (density, traj,
time) flattened, density-major, with those as coordinates on ``case``.

A case Dataset (``bench template``, ``training_pairs``) holds
``background(case, i)``, ``y(case, i)`` (NaN where unobserved),
``obs_mask(case, i)``, ``sigma``; methods receive it as an ``AnalysisProblem``,
one per density, with H the selection of the observed variables. A prediction
is ``x(case, i)``, optionally with a ``member`` dim (an ensemble).
``training_pairs`` adds ``target(sample, i)``, the true state.

Metrics (ensemble mean for members): RMSE pooled over all cases of the sweep
(primary); µ = 1 - RMSE / RMS(truth - climatology) (so climatology scores
about 0); gain = 1 - RMSE(analysis) / RMSE(background); RMSE per density;
CRPS (fair; for a deterministic analysis the CRPS is its mean absolute error);
spread/skill with the finite-ensemble factor sqrt((M+1)/M) (ensembles only);
λx, the smallest wavelength (in grid points) that the analysis resolves:
where 1 - PSD(err)/PSD(truth) along the ring first falls below 0.5.
Intervals: 95 % percentile bootstrap over test cases (1000 resamples; λx has none).
"""
from __future__ import annotations

from typing import ClassVar

import lazy_loader as lazy
import numpy as np

from . import l96_world as W
from .base import Challenge, Metric, Score, bounds
from .problems import Split

torch = lazy.load("torch")
xr = lazy.load("xarray")
metrics = lazy.load("metrics")

MEMBER = "member"
DENSITIES = (1.0, 0.5, 0.25, 0.1)


def _pct(f: float) -> str:
    return f"{round(100 * f)}"


class L96DA(Challenge):
    """One-step DA on Lorenz-96 over a sweep of observation densities (see module doc)."""

    name = "l96-da"
    world = "l96"
    family = "analysis"
    geometry_kind = "ring"
    observes = "state"
    summary = "Lorenz-96 one-step DA: 48 h background + obs -> analysis, obs density 100/50/25/10 %"
    case_dim = "case"
    variables = ("x",)
    optional_dims = ("member",)
    lead_steps = 8
    stride: ClassVar[dict] = {"train": 4, "val": 20, "test": 20}
    seed = 9601

    def __init__(self, densities=DENSITIES, network: str = "random", sigma0: float = 0.4):
        if network not in ("random", "fixed"):
            raise ValueError(f"network must be 'random' or 'fixed', got {network!r}")
        self.densities = tuple(float(d) for d in densities)
        self.network = network
        self.sigma0 = float(sigma0)
        self._cache = {}
        self.metrics = (
            Metric("rmse", "RMSE", False),
            Metric("mu", "µ(RMSE)", True),
            Metric("gain", "gain vs background", True),
            *(Metric(f"rmse_obs{_pct(d)}", f"RMSE {_pct(d)} % obs", False) for d in self.densities),
            Metric("crps", "CRPS", False),
            Metric("spread_skill", "spread/skill", False, "{:.2f}", target=1.0),
            Metric("lambda_x", "λx (grid pts)", False, "{:.1f}"),
        )

    geometry = W.GEOMETRY

    def info(self, size: str) -> dict:
        return {**super().info(size), "densities": list(self.densities), "network": self.network,
                "sigma0": self.sigma0, "background": "L96 48 h forecast of truth(t-48h) + N(0, sigma0^2 I)",
                "stride_steps": self.stride, "obs_sigma": 1.0, "obs_sigma_repr": 0.0}

    # -- cases ---------------------------------------------------------------------------------
    def case_data(self, size: str, split: str, root=None):
        """Every case of a split (all densities), with the truth ``x_true``; cached."""
        key = (str(self.data_dir(size, root)), split)
        if key not in self._cache:
            self._cache[key] = self._build(W.load_split(self, size, split, root), split)
        return self._cache[key]

    def _analysis_steps(self, n_time: int, split: str) -> np.ndarray:
        return np.arange(self.lead_steps, n_time - self.lead_steps, self.stride[split])

    def _build(self, d: dict, split: str):
        x, yobs = d["x"], d["y"]
        n_traj, n_time, N = x.shape
        steps = self._analysis_steps(n_time, split)
        traj = np.repeat(np.arange(n_traj), len(steps))
        tidx = np.tile(steps, n_traj)
        eps = np.concatenate([np.random.default_rng([self.seed, W.SPLIT_IDS[split], j]).standard_normal((len(steps), N))
                              for j in range(n_traj)])
        x0 = torch.as_tensor(x[traj, tidx - self.lead_steps] + self.sigma0 * eps)
        xb = W.model().step(x0, self.lead_steps).numpy()
        parts = []
        for k, f in enumerate(self.densities):
            rng = np.random.default_rng([self.seed + 1, W.SPLIT_IDS[split], k])
            mask = W.observed_mask(f, self.network == "random", len(traj), N, rng)
            parts.append(xr.Dataset(
                {"background": (("case", "i"), xb),
                 "y": (("case", "i"), np.where(mask, yobs[traj, tidx], np.nan)),
                 "obs_mask": (("case", "i"), mask),
                 "x_true": (("case", "i"), x[traj, tidx])},
                coords={"traj": ("case", traj), "time": ("case", d["times"][tidx]),
                        "step": ("case", tidx), "density": ("case", np.full(len(traj), f))}))
        ds = xr.concat(parts, dim="case")
        ds = ds.assign_coords(case=np.arange(ds.sizes["case"]), i=d["i"])
        ds["sigma"] = ((), d["sigma"], {"long_name": "observation error std"})
        ds["background"].attrs.update(long_name="48 h L96 forecast from the perturbed truth")
        ds["time"].attrs.update(units="days")
        return ds

    def _split(self, size: str, name: str, root=None):
        return L96OneStepSplit(self, size, name, root)

    def cases(self, size: str, root=None, split: str = "test"):
        """One ``AnalysisProblem`` per density (all its cases batched along ``case``)."""
        data = self.case_data(size, split, root).drop_vars("x_true")
        for f in self.densities:
            yield W.problem_from_dataset(data.isel(case=np.flatnonzero(data.density.values == f)))

    def test_inputs(self, size: str, root=None):
        """Every test case (dim ``case``): background, y, obs_mask, sigma; no truth."""
        return self.case_data(size, "test", root).drop_vars(["x_true", "x_future", "lead"], errors="ignore")

    def run(self, method, size: str, root=None, progress=None):
        preds = []
        for problem in self.cases(size, root):
            preds.append(method.predict(problem))
            if progress is not None:
                progress(problem.B)
        return self.assemble(preds, size, root)

    # -- format --------------------------------------------------------------------------------
    def template(self, size: str, root=None):
        t = xr.full_like(self.truth(size, root), np.nan)
        lo, hi = bounds(W.load_split(self, size, "train", root)["x"])
        t["x"].attrs.update(valid_min=lo, valid_max=hi)
        return t

    def truth(self, size: str, root=None):
        c = self.case_data(size, "test", root)
        return xr.Dataset({"x": c.x_true.assign_attrs(long_name="analysis of the Lorenz-96 state", units="1")},
                          coords={k: c[k] for k in ("case", "i", "traj", "time", "density")})

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, pred, size: str, root=None) -> dict[str, Score]:
        c = self.case_data(size, "test", root)
        truth = c.x_true
        x = pred["x"].assign_coords(case=truth.case, i=truth.i)
        err = metrics.case_errors(x, truth, "i")
        clim, _ = W.climatology(self, size, root)
        se_a = err["se"].values
        v = {"se": se_a, "sb": ((c.background - truth) ** 2).mean("i").values,
             "sr": ((truth - clim) ** 2).mean("i").values, "n": np.ones_like(se_a)}
        out = {"rmse": Score.of(metrics.bootstrap_sums(v, lambda s: np.sqrt(s["se"] / s["n"]))),
               "mu": Score.of(metrics.bootstrap_sums(v, lambda s: 1.0 - np.sqrt(s["se"] / s["sr"]))),
               "gain": Score.of(metrics.bootstrap_sums(v, lambda s: 1.0 - np.sqrt(s["se"] / s["sb"])))}
        dens = c.density.values
        for f in self.densities:
            sel = {k: a[dens == f] for k, a in v.items()}
            out[f"rmse_obs{_pct(f)}"] = Score.of(metrics.bootstrap_sums(sel, lambda s: np.sqrt(s["se"] / s["n"])))
        crps = err["crps"].values
        out["crps"] = Score(crps.mean(), *metrics.bootstrap_ci(crps))
        out["spread_skill"] = (Score.of(metrics.intervals.spread_skill(se_a, err["var"].values, err["members"]),
                                        rank_histogram=metrics.rank_histogram(x, truth).values.tolist())
                               if "var" in err else Score.undefined("deterministic"))
        mean = x.mean(MEMBER) if MEMBER in x.dims else x
        lam, flag = metrics.ring_resolution(mean, truth, "i")
        out["lambda_x"] = Score(lam, extra={} if flag == "ok" else {"flag": flag})
        return out


class L96OneStepSplit(Split):
    """A train or val split of ``l96-da`` (and ``l96-fc48``, which shares its cases)."""

    family = "analysis"
    geometry = W.GEOMETRY

    def __init__(self, challenge: L96DA, size: str, name: str, root=None):
        from .problems import FieldMap

        self.challenge, self.size, self.name, self.root = challenge, size, name, root
        self.field_map = FieldMap(W.GEOMETRY, None, "x")

    def _data(self):
        return self.challenge.case_data(self.size, self.name, self.root)

    def _first(self):
        d = self._data()
        return d.isel(case=np.flatnonzero(d.density.values == d.density.values[0]))

    def states(self) -> np.ndarray:
        """True states at the split's analysis times (each time once)."""
        return self._first().x_true.values

    def pairs(self):
        d = self._first()
        return d.background.values, d.x_true.values

    def problems(self, trials=None):
        d = self._data().drop_vars("x_true")
        if trials is not None:
            d = d.assign(background=d.background.expand_dims(trial=np.arange(trials)))
        for f in self.challenge.densities:
            yield W.problem_from_dataset(d.isel(case=np.flatnonzero(d.density.values == f)))

    def evaluate(self, predict, n_trials=None) -> np.ndarray:
        """RMSE of the analyses over every case of the split (all densities pooled), per trial."""
        truth = self._data()
        se, n = 0.0, 0
        for problem, f in zip(self.problems(n_trials), self.challenge.densities):
            xa = predict(problem)["x"]
            t = truth.x_true.isel(case=np.flatnonzero(truth.density.values == f))
            e = (xa - t) ** 2
            dims = [d for d in e.dims if d != "trial"]
            se = se + e.sum(dims).values
            n += int(np.prod([e.sizes[d] for d in dims]))
        return np.sqrt(np.atleast_1d(se) / n)

    def training_pairs(self):
        d = self._data()
        return d.rename(case="sample", x_true="target")

    def pairs_key(self) -> dict:
        ch = self.challenge
        return {"pairs": "l96 one-step", "split": self.name, "densities": list(ch.densities), "network": ch.network,
                "sigma0": ch.sigma0, "lead_steps": ch.lead_steps, "stride": ch.stride[self.name]}

    def problem(self, samples, device="cpu"):
        return W.problem_from_dataset(samples.drop_vars("target", errors="ignore"), device=device)
