"""``l96-fc48``: 48 h forecast from the one-step DA inputs, on Lorenz-96.

Inputs are those of ``l96-da`` (same cases, densities, background and
observations; see ``challenges.l96_da``). A prediction is the state at leads
0, 6, ..., 48 h: ``x(case, lead, i)`` (``lead`` in hours), optionally with a
``member`` dim. A method may return that forecast itself (any forecast
system), or only an analysis ``x(case, [member], i)``; then the default
applies: the L96 model (the perfect model here) is run from the analysis,
from every member of an ensemble.

Metrics (ensemble mean for members; per lead, pooled over all cases of the
sweep): RMSE at +0, 12, 24, 36, 48 h (primary: 48 h) and the anomaly
correlation ACC (uncentred, anomalies from the training climatological mean
state; per case over the 40 variables, then averaged over cases). 95 %
bootstrap intervals over test cases.

Reference rows: ``forecast-from-truth`` (the model run from the true state:
zero error at every lead, since the model is perfect: a sanity bound) and
``forecast-from-background`` (the model run from the background, i.e. no
assimilation).
"""
from __future__ import annotations

import lazy_loader as lazy
import numpy as np

from . import l96_world as W
from .base import Metric, Score
from .l96_da import DENSITIES, L96DA, MEMBER

torch = lazy.load("torch")
xr = lazy.load("xarray")
metrics = lazy.load("metrics")

SCORED_LEADS = (48, 0, 12, 24, 36)


class L96Fc48(L96DA):
    """48 h forecasts from the ``l96-da`` cases (see module doc)."""

    name = "l96-fc48"
    family = "forecast"
    summary = "Lorenz-96 48 h forecast from background + obs (default: L96 model run from the analysis)"
    hours_per_step = 6

    def __init__(self, densities=DENSITIES, network: str = "random", sigma0: float = 0.4):
        super().__init__(densities=densities, network=network, sigma0=sigma0)
        self.leads = np.arange(self.lead_steps + 1) * self.hours_per_step
        self.metrics = (*(Metric(f"rmse_{h}h", f"RMSE +{h} h", False) for h in SCORED_LEADS[:1]),
                        Metric("acc_48h", "ACC +48 h", True),
                        *(Metric(f"rmse_{h}h", f"RMSE +{h} h", False) for h in SCORED_LEADS[1:]),
                        *(Metric(f"acc_{h}h", f"ACC +{h} h", True) for h in SCORED_LEADS[1:]))

    def info(self, size: str) -> dict:
        return {**super().info(size), "leads_hours": self.leads.tolist(),
                "default_forecast": "L96 model (perfect) from the method's analysis, every member"}

    def _lead_coord(self) -> xr.Variable:
        return xr.Variable("lead", self.leads, {"units": "hours", "long_name": "forecast lead time"})

    def case_data(self, size: str, split: str, root=None) -> xr.Dataset:
        """``l96-da``'s cases plus the true trajectory ``x_future(case, lead, i)``."""
        key = (str(self.data_dir(size, root)), split, "fc")
        if key not in self._cache:
            c = super().case_data(size, split, root)
            x = W.load_split(self, size, split, root)["x"]
            steps = c.step.values[:, None] + np.arange(self.lead_steps + 1)
            fut = x[c.traj.values[:, None], steps]
            self._cache[key] = c.assign(x_future=(("case", "lead", "i"), fut)).assign_coords(lead=self._lead_coord())
        return self._cache[key]

    def cases(self, size: str, root=None, split: str = "test"):
        data = self.case_data(size, split, root).drop_vars(["x_true", "x_future", "lead"])
        for f in self.densities:
            yield W.problem_from_dataset(data.isel(case=np.flatnonzero(data.density.values == f)),
                                         attrs={"leads": self.leads.tolist()})

    def forecast(self, x: xr.DataArray) -> xr.DataArray:
        """Run the L96 model from analyses ``x(..., i)``: returns ``x(..., lead, i)``."""
        other = [d for d in x.dims if d != "i"]
        a = x.transpose(*other, "i")
        t = torch.as_tensor(np.array(a.values, dtype=np.float64))
        traj = W.model().trajectory(t, self.lead_steps).numpy()
        return xr.DataArray(traj, dims=(*other, "lead", "i"),
                            coords={**{d: a[d] for d in other if d in a.coords}, "lead": self._lead_coord(), "i": a.i})

    def run(self, method, size: str, root=None, progress=None) -> xr.Dataset:
        preds = []
        for problem in self.cases(size, root):
            pred = method.predict(problem)
            if "lead" not in pred["x"].dims:
                pred = xr.Dataset({"x": self.forecast(pred["x"])})
            preds.append(pred)
            if progress is not None:
                progress(problem.B)
        return self.assemble(preds, size, root)

    def template(self, size: str, root=None):
        from .base import bounds

        t = xr.full_like(self.truth(size, root), np.nan)
        lo, hi = bounds(W.load_split(self, size, "train", root)["x"])
        t["x"].attrs.update(valid_min=lo, valid_max=hi)
        return t

    def truth(self, size: str, root=None) -> xr.Dataset:
        c = self.case_data(size, "test", root)
        return xr.Dataset({"x": c.x_future.assign_attrs(long_name="forecast of the Lorenz-96 state", units="1")},
                          coords={k: c[k] for k in ("case", "lead", "i", "traj", "time", "density")})

    def references(self, size: str, root=None) -> dict:
        c = self.case_data(size, "test", root)
        return {"forecast-from-truth": (xr.Dataset({"x": self.forecast(c.x_true)}),
                                        "L96 model run from the true state (perfect model: zero error)"),
                "forecast-from-background": (xr.Dataset({"x": self.forecast(c.background)}),
                                             "L96 model run from the background (no assimilation)")}

    def score(self, pred, size: str, root=None) -> dict[str, Score]:
        truth = self.truth(size, root).x
        x = pred["x"].assign_coords(case=truth.case, lead=truth.lead, i=truth.i)
        mean = (x.mean(MEMBER) if MEMBER in x.dims else x).transpose("case", "lead", "i")
        clim, _ = W.climatology(self, size, root)
        se = ((mean - truth) ** 2).mean("i").values
        acc = metrics.anomaly_correlation(mean, truth, xr.DataArray(clim, dims="i"), over="i").transpose("case", "lead").values
        out = {}
        for h in SCORED_LEADS:
            j = int(np.flatnonzero(self.leads == h)[0])
            out[f"rmse_{h}h"] = Score.of(metrics.bootstrap_sums({"se": se[:, j], "n": np.ones(len(se))},
                                                                lambda s: np.sqrt(s["se"] / s["n"])))
            a = acc[:, j]
            out[f"acc_{h}h"] = (Score(float(np.nanmean(a)), *metrics.bootstrap_ci(a)) if np.isfinite(a).any()
                                else Score.undefined("undefined: no anomaly"))
        return {m.key: out[m.key] for m in self.metrics}
