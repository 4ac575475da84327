"""``l96x-closure``: closure of the two-scale Lorenz-96 model's slow variables (Wilks 2005), offline and online.

World ``l96x`` (K = 8 slow X, J = 32 fast Y per slow, F = 20, h = 1, b = c =
10), stored every 0.05 time units. The coarse model is the slow equation alone
with a closure S(X) in place of the coupling, the term added to the slow
tendency:

    dX_k/dt = -X_{k-1}(X_{k-2} - X_{k+1}) - X_k + F + S_k,   true S_k = -(h c / b) sum_j Y_{j,k}

integrated with RK4 at dt = 0.01 (5 steps per stored snapshot; the slow
equation is not stiff, and its RK4 error at this step is far below the
closure's; the closure is called at every stage; a stochastic closure
advances its noise once per step). Methods fit on the train split (X, S pairs and the true trajectories)
and tune on val; tests on the test split's trajectories.

Prediction (``bench template``): ``S(traj, time, k)`` on every test state;
``bench run`` adds the online runs (optional variables): ``long(run, step,
k)`` after a spin-up, ``short(run, lead, k)`` forecasts, ``blowup(run)``.

Online runs: from test states every 500 snapshots (25 time units apart) of
every test trajectory; short range: 40 snapshots (2 time units = 10 "days");
long range: a spin-up of 10 time units, then 200 (tiny: 100) time units of
snapshots. A run blows up when X is not finite or |X| exceeds 100.

Metrics: the similarity (Ross et al. 2023 form) 1 - d(closure, truth) /
d(none, truth) over long-run statistics of X (Wilks 2005): the Wasserstein-1
distance between the marginal distributions of X, the RMSE between the
autocorrelation functions of X up to a lag of 2 time units, and between the
spatial correlations corr(X_k, X_{k+j}), j = 1..4 (mean and minimum over the
three, intervals over runs); offline R², correlation and RMSE of S; the
short-range RMSE of X at +1 time unit over its std; the fraction of runs that
blew up.
"""
from __future__ import annotations

from typing import ClassVar

import lazy_loader as lazy
import numpy as np

from . import closure_online as O
from .base import Challenge, Metric, Score, bounds
from .geometry import RING, Geometry
from .problems import ClosureProblem, Split

torch = lazy.load("torch")
xr = lazy.load("xarray")
metrics = lazy.load("metrics")

K = 8
GEOMETRY = Geometry(kind=RING, shape=(K,), length=(float(K),), axes=("k",), units="grid points")
STEPS = 5  # model steps (dt = 0.01) per stored snapshot (0.05)


class CoarseL96:
    """The slow Lorenz-96 equation with a closure, RK4 (``ClosureProblem.model``)."""

    def __init__(self, dt: float = 0.01):
        from data_scripts.l96 import Lorenz96TwoScale

        self.two_scale = Lorenz96TwoScale(K=K)
        self.dt = float(dt)

    def run_closed(self, x0, n_steps: int, every: int, closure):
        x = x0.to(torch.float64)
        for n in range(1, int(n_steps) + 1):
            x = self.two_scale.coarse_step(x, 1, closure, dt=self.dt)
            if hasattr(closure, "advance"):
                closure.advance(self.dt)
            if n % every == 0:
                yield n, x

    def step_closed(self, x, n_steps: int, closure):
        out = x
        for _, out in self.run_closed(x, n_steps, n_steps, closure):
            pass
        return out


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation of X (T, K) at lags 0..max_lag, averaged over k."""
    x = x - x.mean(0)
    v = (x * x).mean()
    return np.array([(x[: len(x) - lag] * x[lag:]).mean() / v for lag in range(max_lag + 1)])


def _spatial(x: np.ndarray) -> np.ndarray:
    """corr(X_k, X_{k+j}) for j = 1..4, averaged over k."""
    x = x - x.mean(0)
    v = (x * x).mean()
    return np.array([(x * np.roll(x, -j, axis=1)).mean() / v for j in range(1, 5)])


class L96XClosure(Challenge):
    name = "l96x-closure"
    world = "l96x"
    family = "closure"
    geometry_kind = "ring"
    observes = "none"
    summary = "closure of the two-scale Lorenz-96 slow variables (Wilks 2005): offline S(X) and online statistics"
    leaderboard_note = """
        Reading the table: similarity 1 is as good as the two-scale truth's long-run statistics of
        X, 0 no better than the slow equation without closure (*none*), below 0 worse. The
        coupling term is a smooth function of the local X to a good approximation (Wilks' cubic),
        so offline skill is high; the online columns show whether it carries over."""
    metrics = (Metric("similarity", "similarity", True, "{:.2f}"), Metric("similarity_min", "min similarity", True, "{:.2f}"),
               Metric("r2", "offline R²", True, "{:.3f}"), Metric("short_nrmse", "X RMSE +1 MTU", False, "{:.3f}"),
               Metric("blowup", "blown up", False, "{:.2f}"))
    variables = ("S",)
    optional_vars = {"long": ("run", "step", "k"), "short": ("run", "lead", "k"), "blowup": ("run",)}
    geometry = GEOMETRY
    short_snapshots = 40
    spinup_snapshots = 200
    stats_snapshots: ClassVar[dict] = {"tiny": 2000, "small": 4000, "full": 10000}
    start_every = 500
    bound = 100.0

    def __init__(self):
        self._cache = {}

    def model(self):
        return CoarseL96()

    def fields(self, size: str, split: str, root=None):
        key = (str(self.data_dir(size, root)), split)
        if key not in self._cache:
            f = self.open(size, split, root=root)
            self._cache[key] = (f["X"].values.astype(np.float64), f["S"].values.astype(np.float64),
                                f["time"].values, dict(f["time"].attrs))
        return self._cache[key]

    def _split(self, size: str, name: str, root=None):
        return L96XClosureSplit(self, size, name, root)

    def cases(self, size: str, root=None):
        X, _, times, attrs = self.fields(size, "test", root)
        x = torch.as_tensor(X)
        coords = {"traj": np.arange(X.shape[0]), "time": xr.Variable("time", times, attrs), "k": np.arange(K)}
        yield ClosureProblem(states=x.reshape(-1, K), geometry=GEOMETRY, model=self.model(), var="S",
                             batch_dims=("traj", "time"), batch_shape=tuple(x.shape[:2]), coords=coords,
                             steps_per_snapshot=STEPS)

    def progress_total(self, size: str, root=None) -> tuple[int, str]:
        return 2, "stage"

    def initial_states(self, size: str, root=None) -> tuple[np.ndarray, list]:
        X = self.fields(size, "test", root)[0]
        starts = list(range(0, X.shape[1] - self.short_snapshots - 1, self.start_every))
        return X[:, starts].reshape(-1, K), starts

    def online(self, closure, size: str, root=None) -> dict:
        x0, _ = self.initial_states(size, root)
        x0 = torch.as_tensor(x0)

        def ok(x):
            return (x.abs() < self.bound).all(-1).cpu().numpy()

        short, _ = O.short_runs(self.model(), closure, x0, self.short_snapshots, STEPS, ok)
        long, blown = O.long_runs(self.model(), closure, x0, self.spinup_snapshots, self.stats_snapshots[size],
                                  STEPS, ok)
        return {"short": short, "long": long, "blowup": blown}

    def run(self, method, size: str, root=None, progress=None):
        problem = next(iter(self.cases(size, root)))
        S = method.predict(problem)["S"]
        if progress is not None:
            progress(1)
        res = self.online(method.closure(problem.model), size, root)
        if progress is not None:
            progress(1)
        return xr.Dataset({"S": S, "long": (("run", "step", "k"), res["long"]),
                           "short": (("run", "lead", "k"), res["short"]),
                           "blowup": (("run",), res["blowup"].astype(np.int64))})

    # -- format ------------------------------------------------------------------------------------------------
    def truth(self, size: str, root=None):
        X, S, times, attrs = self.fields(size, "test", root)
        return xr.Dataset({"S": (("traj", "time", "k"), S, {"units": "1", "long_name": "subgrid forcing of X"})},
                          coords={"traj": np.arange(S.shape[0]), "time": ("time", times, attrs), "k": np.arange(K)})

    def template(self, size: str, root=None):
        t = xr.full_like(self.truth(size, root), np.nan)
        lo, hi = bounds(self.fields(size, "train", root)[1])
        t["S"].attrs.update(valid_min=lo, valid_max=hi)
        return t

    # -- scoring -------------------------------------------------------------------------------------------------
    def _stats(self, x: np.ndarray) -> dict:
        lag = int(round(2.0 / 0.05))
        return {"X": x.ravel(), "acf": _acf(x, lag), "spatial": _spatial(x)}

    def _distances(self, size, long: np.ndarray, root) -> dict:
        X = self.fields(size, "test", root)[0]
        truth = [self._stats(X[i]) for i in range(X.shape[0])]
        t = {"X": np.concatenate([s["X"] for s in truth]), "acf": np.mean([s["acf"] for s in truth], 0),
             "spatial": np.mean([s["spatial"] for s in truth], 0)}
        out = {k: np.full(long.shape[0], np.nan) for k in t}
        for r in range(long.shape[0]):
            if not np.isfinite(long[r]).all():
                continue
            s = self._stats(long[r].astype(np.float64))
            out["X"][r] = metrics.wasserstein1(s["X"], t["X"])
            out["acf"][r] = float(np.sqrt(np.mean((s["acf"] - t["acf"]) ** 2)))
            out["spatial"][r] = float(np.sqrt(np.mean((s["spatial"] - t["spatial"]) ** 2)))
        return out

    def _reference(self, size: str, root=None) -> dict:
        key = ("reference", size, str(self.data_dir(size, root)))
        if key not in self._cache:
            self._cache[key] = self._distances(size, self.online(None, size, root)["long"], root)
        return self._cache[key]

    def score(self, pred, size: str, root=None) -> dict[str, Score]:
        X, S, _, _ = self.fields(size, "test", root)
        p = pred["S"].transpose("traj", "time", "k").values.astype(np.float64)
        v = {"se": ((p - S) ** 2).reshape(-1, K).sum(1), "ss": ((S - S.mean()) ** 2).reshape(-1, K).sum(1)}
        corr = float(metrics.correlation(xr.DataArray(p), xr.DataArray(S)))
        out = {"r2": Score.of(metrics.bootstrap_sums(v, lambda s: 1.0 - s["se"] / s["ss"]), correlation=corr,
                              rmse=float(np.sqrt(np.mean((p - S) ** 2))))}
        if "long" not in pred:
            for k in ("similarity", "similarity_min", "short_nrmse", "blowup"):
                out[k] = Score.undefined("offline submission: no online runs")
            return out
        _, starts = self.initial_states(size, root)
        true_short = np.stack([X[:, s + 1:s + 1 + self.short_snapshots] for s in starts], 1).reshape(
            -1, self.short_snapshots, K)
        curve = O.nrmse_by_lead(pred["short"].values, true_short, float(X.std()))
        out["short_nrmse"] = Score(float(curve[19]), extra={"by_lead_snapshots": curve.tolist()})
        blown = pred["blowup"].values
        sim = O.similarity_scores(self._distances(size, pred["long"].values, root), self._reference(size, root), blown)
        flag = {} if (blown < 0).all() else {"flag": f"{int((blown >= 0).sum())} of {len(blown)} runs blew up"}
        out["similarity"] = Score(*sim["mean"], extra={"per_metric": sim["per_metric"], **flag})
        out["similarity_min"] = Score(*sim["min"], extra=dict(flag))
        out["blowup"] = Score(float((blown >= 0).mean()),
                              extra={"snapshots_to_blowup": [int(b) if b >= 0 else None for b in blown]})
        return out

    def info(self, size: str) -> dict:
        return {**super().info(size), "dt": 0.01, "steps_per_snapshot": STEPS, "short_snapshots": self.short_snapshots,
                "spinup_snapshots": self.spinup_snapshots, "stats_snapshots": self.stats_snapshots[size]}


class L96XClosureSplit(Split):
    family = "closure"
    geometry = GEOMETRY

    def __init__(self, challenge: L96XClosure, size: str, name: str, root=None):
        from .problems import FieldMap

        self.challenge, self.size, self.name, self.root = challenge, size, name, root
        self.model = challenge.model()
        self.steps_per_snapshot = STEPS
        self.field_map = FieldMap(GEOMETRY, None, "X")

    def trajectories(self) -> np.ndarray:
        return self.challenge.fields(self.size, self.name, self.root)[0]

    def states(self) -> np.ndarray:
        return self.trajectories().reshape(-1, K)

    def forcings(self) -> np.ndarray:
        return self.challenge.fields(self.size, self.name, self.root)[1].reshape(-1, K)

    def evaluate(self, closure, n_trials=None) -> np.ndarray:
        """Short-range online error: RMSE of X over its std, mean over the first 20 snapshots, from every 200th."""
        X = self.trajectories()
        starts = list(range(0, X.shape[1] - 21, 200))
        x0 = torch.as_tensor(X[:, starts].reshape(-1, K))
        runs, blown = O.short_runs(self.model, closure, x0, 20, STEPS)
        truth = np.stack([X[:, s + 1:s + 21] for s in starts], 1).reshape(-1, 20, K)
        if (blown >= 0).any():
            return np.array([np.inf])
        return np.array([float(O.nrmse_by_lead(runs, truth, float(X.std())).mean())])

    def training_pairs(self):
        X, S = self.states(), self.forcings()
        return xr.Dataset({"x": (("sample", "k"), X), "target": (("sample", "k"), S)},
                          attrs={"split": self.name, "size": self.size})

    def problem(self, samples, device="cpu"):
        x = torch.as_tensor(np.asarray(samples["x"].values, np.float64), device=device)
        return ClosureProblem(states=x, geometry=GEOMETRY, model=self.model, var="S", batch_dims=("sample",),
                              batch_shape=(x.shape[0],), steps_per_snapshot=STEPS)

    def pairs_key(self) -> dict:
        return {"pairs": "l96x closure", "split": self.name}
