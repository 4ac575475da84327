"""``qg-fc48``: 48 h forecasts in the QG world from the one-step DA inputs.

Inputs: exactly the ``qg-da`` cases (7-day LR background from the
coarse-grained truth + random SSH observations, 0.2 per LR cell, with their
full error model), at analysis days 7, 12, 17, ... that leave 48 h of truth
after them. With a 7-day background (µ about 0.83) the table measures what an
analysis buys over the forecast from the background.

Prediction: ``q(traj, time, lead, lev, y, x)``, the forecast at leads
0, 24 and 48 h (an optional ``member`` dim for ensembles). By default
(``bench run``) the method's ``predict`` returns an analysis (the ``qg-da``
format, without ``lead``) and the harness runs the LR model (no closure,
dt = 1 h) from it, every member alike; any forecast system may instead
return the ``lead`` dim itself or submit a file.

Leads: the truth is stored as daily snapshots, so leads are scored at 0, 24
and 48 h; 12 h and 36 h need sub-daily truth that the datasets do not hold.

Metrics, leaderboard order: SSH RMSE at +48 h (m, primary), SSH ACC at +48 h,
SSH RMSE at 0 and +24 h, ACC at +24 h, µ(RMSE) of q1 at +48 h. ACC is the
uncentred anomaly correlation against the climatological mean (constant in
space by homogeneity: the training mean, 0 up to round-off). 95 % bootstrap
intervals resample forecast cases.

Reference rows: ``forecast-from-truth`` (the LR model from the coarse-grained
truth: its error is pure model error, the lower bound of any method that
forecasts with the LR model) and ``forecast-from-background``.
"""
from __future__ import annotations

import lazy_loader as lazy
import numpy as np

from . import qg_world as W
from .base import Metric, Score
from .qg_da import QGDA

torch = lazy.load("torch")
xr = lazy.load("xarray")
metrics = lazy.load("metrics")

LEADS = (0, 24, 48)


class QGFc48(QGDA):
    name = "qg-fc48"
    family = "forecast"
    summary = "48 h forecast from the qg-da inputs (default: LR model from the method's analysis)"
    leaderboard_note = """
        Reading the table: *forecast-from-truth* is the pure model-error bound (the LR model
        from the exact state) and *forecast-from-background* the no-assimilation bound (the
        7-day background run on). An analysis shows up as a forecast between the two; the
        model error the LR model adds over 48 h is common to every row that forecasts with it."""
    tail_days = 2
    leads = LEADS
    metrics = (
        Metric("rmse_48h", "RMSE SSH +48 h (m)", False, "{:.5f}"),
        Metric("acc_48h", "ACC +48 h", True, "{:.3f}"),
        Metric("rmse_0h", "RMSE SSH +0 h (m)", False, "{:.5f}"),
        Metric("rmse_24h", "RMSE SSH +24 h (m)", False, "{:.5f}"),
        Metric("acc_24h", "ACC +24 h", True, "{:.3f}"),
        Metric("mu_q1_48h", "µ q1 +48 h", True, "{:.3f}"),
    )

    def __init__(self, fraction: float | None = None):
        super().__init__(fraction)
        self.description = __doc__

    def _lead(self):
        return xr.Variable("lead", np.asarray(self.leads, dtype=np.int64), {"units": "hours", "long_name": "forecast lead time"})

    def forecast(self, q: xr.DataArray, size: str):
        """LR-model forecasts at ``leads`` from analyses q (..., lev, y, x) -> (..., lead, lev, y, x)."""
        other = [d for d in q.dims if d not in ("lev", "y", "x")]
        a = q.transpose(*other, "lev", "y", "x")
        t = torch.as_tensor(np.array(a.values, dtype=np.float64))
        flat = t.reshape(-1, *t.shape[-3:])
        model = W.lr_model(size)
        with torch.no_grad():
            out = self._continuous(model, flat)
        arr = torch.stack(out, 1).reshape(*t.shape[:-3], len(self.leads), *t.shape[-3:]).numpy()
        coords = {d: a[d] for d in (*other, "lev", "y", "x") if d in a.coords}
        return xr.DataArray(arr, dims=(*other, "lead", "lev", "y", "x"), coords={**coords, "lead": self._lead()})

    def _continuous(self, model, q0: torch.Tensor) -> list:
        """States at ``leads`` of one continuous LR run from q0 (B, 2, ny, nx)."""
        steps = [int(round(h * W.HOUR / model.dt)) for h in self.leads]
        out = {0: q0} if steps[0] == 0 else {}
        if steps[-1] > 0:
            for n, q in model.run(q0, steps[-1], steps[1] if len(steps) > 1 and steps[1] > 0 else steps[-1]):
                if n in steps:
                    out[n] = q
        return [out[s] for s in steps]

    def cases(self, size: str, root=None, split: str = "test"):
        from .qg_base import problem_from_dataset

        for i in range(self.backgrounds(size, split, root).sizes["traj"]):
            yield problem_from_dataset(self.case(size, i, split, root), attrs={"leads": list(self.leads)})

    def run(self, method, size: str, root=None, progress=None):
        preds = []
        for problem in self.cases(size, root):
            pred = method.predict(problem)
            if "lead" not in pred["q"].dims:
                pred = xr.Dataset({"q": self.forecast(pred["q"], size)})
            preds.append(pred)
            if progress is not None:
                progress(1)
        return self.assemble(preds, size, root)

    # -- format ---------------------------------------------------------------------
    def template(self, size: str, root=None):
        c = self._coords(size, root)
        shape = (len(c["traj"]), len(c["time"][1]), len(self.leads), len(c["lev"]), len(c["y"]), len(c["x"]))
        lo, hi = self.q_bounds(size, root)
        q = xr.DataArray(np.full(shape, np.nan, dtype=np.float32), dims=("traj", "time", "lead", "lev", "y", "x"),
                         attrs={"units": "s-1", "long_name": "forecast potential vorticity anomaly",
                                "valid_min": lo, "valid_max": hi})
        return xr.Dataset({"q": q}, coords={**c, "lead": self._lead()})

    def truth(self, size: str, root=None, split: str = "test"):
        f = self.fields(size, split, root)
        days = self.analysis_days(size, split)
        qs = [f["q"].sel(time=days + h / 24).assign_coords(time=days) for h in self.leads]
        q = xr.concat(qs, dim="lead").assign_coords(lead=self._lead())
        q = q.transpose("traj", "time", "lead", "lev", "y", "x")
        return xr.Dataset({"q": q.astype(np.float64)}).load()

    def references(self, size: str, root=None) -> dict:
        truth0 = self.analysis_truth(size, root)["q"]
        bg = self.backgrounds(size, "test", root)
        return {"forecast-from-truth": (xr.Dataset({"q": self.forecast(truth0, size)}),
                                        "LR model from the coarse-grained truth: pure model error (no closure)"),
                "forecast-from-background": (xr.Dataset({"q": self.forecast(bg, size)}),
                                             f"LR model from the {self.lead_hours} h background (no assimilation)")}

    def score(self, pred, size: str, root=None, split: str = "test"):
        truth = self.truth(size, root, split)["q"]
        q = pred["q"]
        if "member" in q.dims:
            q = q.mean("member")
        q = q.transpose("traj", "time", "lead", "lev", "y", "x").astype(np.float64)
        dims = ("case", "lead", "y", "x")
        ps = W.ssh_of_q_np(size, q.values)
        ts = W.ssh_of_q_np(size, truth.values)
        n = ps.shape[0] * ps.shape[1]
        ps = xr.DataArray(ps.reshape(n, *ps.shape[2:]), dims=dims)
        ts = xr.DataArray(ts.reshape(n, *ts.shape[2:]), dims=dims)
        se = ((ps - ts) ** 2).mean(("y", "x")).values
        # anomalies from the climatological mean SSH: constant in space by homogeneity, 0 up to round-off
        acc = metrics.anomaly_correlation(ps, ts, 0.0, over=("y", "x")).transpose("case", "lead").values
        q1p = q.isel(lev=0).values.reshape(n, len(self.leads), -1)
        q1t = truth.isel(lev=0).values.reshape(n, len(self.leads), -1)
        out = {}
        for j, h in enumerate(self.leads):
            out[f"rmse_{h}h"] = Score.of(metrics.bootstrap_sums({"se": se[:, j], "n": np.ones(n)},
                                                                lambda s: np.sqrt(s["se"] / s["n"])))
            a = acc[:, j]
            out[f"acc_{h}h"] = (Score(float(np.nanmean(a)), *metrics.bootstrap_ci(a)) if np.isfinite(a).any()
                                else Score.undefined("undefined: a forecast without anomalies"))
            v = {"e": ((q1p[:, j] - q1t[:, j]) ** 2).sum(-1), "r": (q1t[:, j] ** 2).sum(-1)}
            out[f"mu_q1_{h}h"] = Score.of(metrics.bootstrap_sums(v, lambda s: 1 - np.sqrt(s["e"] / s["r"])))
        return out

    def info(self, size: str) -> dict:
        return {**super().info(size), "leads_hours": list(self.leads),
                "default_forecast": "LR model (no closure) from the method's analysis, one continuous run"}
