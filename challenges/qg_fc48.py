"""``qg-fc48``: 48 h forecasts in the QG world from the one-step DA inputs.

Inputs: exactly the ``qg-da`` cases (48 h LR background from the
coarse-grained truth + random SSH observations, 0.2 per LR cell), at
analysis days 2, 7, 12, ... that leave 48 h of truth after them.

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

import numpy as np
import torch
import xarray as xr

from . import qg_common as Q
from .base import Metric, Score
from .qg_da import QGDA

LEADS = (0, 24, 48)


class QGFc48(QGDA):
    name = "qg-fc48"
    summary = "48 h forecast from the qg-da inputs (default: LR model from the method's analysis)"
    leaderboard_note = """
        Reading the table: *forecast-from-truth* is the pure model-error bound. The LR model
        started from the exact state is off at +48 h by as much as the background is at +0 h, so
        model error, not initial-state error, dominates the 48 h forecast: the analyses' gain
        at +0 h mostly vanishes by +48 h, and the rows sit near *forecast-from-background*. A
        better 48 h forecast needs a better forecast model (the closure challenges), which a
        submission may use."""
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

    def _lead(self) -> xr.Variable:
        return xr.Variable("lead", np.asarray(self.leads, dtype=np.int64), {"units": "hours", "long_name": "forecast lead time"})

    def forecast(self, q: xr.DataArray, size: str) -> xr.DataArray:
        """LR-model forecasts at ``leads`` from analyses q (..., lev, y, x) -> (..., lead, lev, y, x)."""
        other = [d for d in q.dims if d not in ("lev", "y", "x")]
        a = q.transpose(*other, "lev", "y", "x")
        t = torch.as_tensor(np.array(a.values, dtype=np.float64))
        flat = t.reshape(-1, *t.shape[-3:])
        model = Q.lr_model(size)
        with torch.no_grad():
            out = self._continuous(model, flat)
        arr = torch.stack(out, 1).reshape(*t.shape[:-3], len(self.leads), *t.shape[-3:]).numpy()
        coords = {d: a[d] for d in (*other, "lev", "y", "x") if d in a.coords}
        return xr.DataArray(arr, dims=(*other, "lead", "lev", "y", "x"), coords={**coords, "lead": self._lead()})

    def _continuous(self, model, q0: torch.Tensor) -> list:
        """States at ``leads`` of one continuous LR run from q0 (B, 2, ny, nx)."""
        steps = [int(round(h * Q.HOUR / model.dt)) for h in self.leads]
        out = {0: q0} if steps[0] == 0 else {}
        if steps[-1] > 0:
            for n, q in model.run(q0, steps[-1], steps[1] if len(steps) > 1 and steps[1] > 0 else steps[-1]):
                if n in steps:
                    out[n] = q
        return [out[s] for s in steps]

    def run(self, method, size: str, root=None, progress=None) -> xr.Dataset:
        preds = []
        for case in self.cases(size, root):
            pred = method.predict(case)
            if "lead" not in pred["q"].dims:
                pred = xr.Dataset({"q": self.forecast(pred["q"], size)})
            preds.append(pred)
            if progress is not None:
                progress(1)
        return self.assemble(preds, size, root)

    # -- format ---------------------------------------------------------------------
    def template(self, size: str, root=None) -> xr.Dataset:
        c = self._coords(size, root)
        shape = (len(c["traj"]), len(c["time"][1]), len(self.leads), len(c["lev"]), len(c["y"]), len(c["x"]))
        q = xr.DataArray(np.full(shape, np.nan, dtype=np.float32), dims=("traj", "time", "lead", "lev", "y", "x"),
                         attrs={"units": "s-1", "long_name": "forecast potential vorticity anomaly"})
        return xr.Dataset({"q": q}, coords={**c, "lead": self._lead()})

    def truth(self, size: str, root=None, split: str = "test") -> xr.Dataset:
        f = self.fields(size, split, root)
        days = self.analysis_days(size)
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
                                             "LR model from the 48 h background (no assimilation)")}

    def score(self, pred: xr.Dataset, size: str, root=None, split: str = "test", n_boot: int = 1000):
        from metrics import bootstrap_ci

        truth = self.truth(size, root, split)["q"]
        q = pred["q"]
        if "member" in q.dims:
            q = q.mean("member")
        q = q.transpose("traj", "time", "lead", "lev", "y", "x").astype(np.float64)
        ps = Q.ssh_of_q_np(size, q.values)  # (traj, time, lead, y, x)
        ts = Q.ssh_of_q_np(size, truth.values)
        tr, tm = ps.shape[:2]
        ps, ts = ps.reshape(tr * tm, *ps.shape[2:]), ts.reshape(tr * tm, *ts.shape[2:])
        q1p = q.isel(lev=0).values.reshape(tr * tm, len(self.leads), -1)
        q1t = truth.isel(lev=0).values.reshape(tr * tm, len(self.leads), -1)
        clim = 0.0  # homogeneous climatological mean of SSH (training mean, 0 up to round-off)
        out = {}
        for j, h in enumerate(self.leads):
            se = ((ps[:, j] - ts[:, j]) ** 2).mean((-2, -1))
            fa, ta = ps[:, j] - clim, ts[:, j] - clim
            den = np.sqrt((fa ** 2).sum((-2, -1)) * (ta ** 2).sum((-2, -1)))
            acc = np.where(den > 0, (fa * ta).sum((-2, -1)) / np.where(den > 0, den, 1.0), np.nan)
            out[f"rmse_{h}h"] = Score(float(np.sqrt(se.mean())),
                                      *bootstrap_ci(lambda i, e=se: np.sqrt(np.mean(e[i])), n=n_boot, n_cases=len(se)))
            if np.isfinite(acc).any():
                out[f"acc_{h}h"] = Score(float(np.nanmean(acc)), *bootstrap_ci(acc, n=n_boot))
            else:  # a forecast without anomalies (e.g. the climatology): ACC undefined
                out[f"acc_{h}h"] = Score(float("nan"), extra={"flag": "undefined"})
            e1 = ((q1p[:, j] - q1t[:, j]) ** 2).sum(-1)
            r1 = (q1t[:, j] ** 2).sum(-1)
            out[f"mu_q1_{h}h"] = Score(float(1 - np.sqrt(e1.sum() / r1.sum())),
                                       *bootstrap_ci(lambda i, e=e1, r=r1: 1 - np.sqrt(e[i].sum() / r[i].sum()),
                                                     n=n_boot, n_cases=len(e1)))
        return out

    def info(self, size: str) -> dict:
        return {**super().info(size), "leads_hours": list(self.leads),
                "default_forecast": "LR model (no closure) from the method's analysis, one continuous run"}
