"""``qg-da``: one-step data assimilation in the two-layer QG world.

World and splits: ``qg``; methods fit on ``train`` (full fields), tune on
``val`` (``challenge.cases(size, split="val")``, ``challenge.truth(size,
split="val")``) and are scored on ``test``.

Analysis times: every ``stride`` = 5 days of each test trajectory, from day 2
(the first day with a truth 48 h earlier). At each analysis time t:

* background ``background(time, lev, y, x)`` (PV q, 1/s): the LR model's
  48 h forecast started from the coarse-grained truth at t - 48 h. It is
  imperfect only because the LR model lacks the subgrid closure (and the
  coarse-graining), as an operational model lacks unresolved physics.
* observations: SSH (m) at random positions at time t, point samples of the
  HR field plus Gaussian noise (``sigma`` = 3 mm, ``data_scripts.config.SSH_SIGMA``): ``obs_x``, ``obs_y``
  (km), ``obs_value``, ``obs_sigma`` with dims (time, obs). The density is a
  fraction of the number of LR grid points: ``qg-da`` 0.2 (the default),
  ``qg-da-sparse`` 0.05, ``qg-da-dense`` 1.0 (the sweep: one leaderboard table
  per density). They are a seeded random subsample of each day's rows of
  the ``random`` store (nested across densities, the same for every method).

The observation operator of the challenge is exact: SSH = (f0/g) psi1 of the
LR inversion of q, evaluated at the positions by the band-limited
trigonometric interpolant of the LR grid (``qg_common.Interpolator``).

One case per test trajectory holds all its analysis times (so methods can
batch them); a case never holds the truth.

Prediction: the analysis of the full LR model state, ``q(traj, time, lev, y, x)``
(1/s, both layers), from which the harness forecasts (``qg-fc48``,
``qg-cycle``); SSH is diagnosed from it by the LR inversion. A method that
analyses SSH only must still return a full q (e.g. background q plus a
balanced increment).

Metrics, leaderboard order: µ(RMSE) of SSH (primary), raw SSH RMSE (m), gain
over the background 1 - RMSE(analysis)/RMSE(background) (SSH), isotropic λ
(km, SSH), µ of q in layer 1 and layer 2. 95 % bootstrap intervals resample
analysis times (cases 5 days apart, pooled over trajectories).
An ensemble analysis may add a ``member`` dim: the deterministic scores use
its mean, and the fair CRPS and the spread/skill ratio of SSH are added
(resampling analysis times too).
"""
from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from . import qg_common as Q
from .base import Metric, Score

DA_METRICS = (
    Metric("mu", "µ(RMSE) SSH", True, "{:.3f}"),
    Metric("rmse", "RMSE SSH (m)", False, "{:.5f}"),
    Metric("gain", "gain vs bg", True, "{:.3f}"),
    Metric("lambda_iso_km", "λiso (km)", False, "{:.0f}"),
    Metric("mu_q1", "µ q1", True, "{:.3f}"),
    Metric("mu_q2", "µ q2", True, "{:.3f}"),
    Metric("crps", "CRPS SSH (m)", False, "{:.5f}"),
    Metric("spread_skill", "spread/skill", False, "{:.2f}", target=1.0),
)


class QGDA(Q.QGChallenge):
    name = "qg-da"
    summary = "one-step DA: 48 h LR background + random SSH obs (0.2 per LR cell) -> analysis of q"
    leaderboard_note = """
        Reading the table: the background is the LR model's 48 h forecast from the truth, so its
        only error is the LR model's (no subgrid closure), and it already scores µ ≈ 0.9. That
        error sits at the smallest LR scales (OI's tuned length scale goes to the bottom of its
        grid), where few noisy point observations constrain little: the gain over the background
        grows with density (`qg-da-sparse` < `qg-da` < `qg-da-dense`). 3D-Var, whose B is the
        spectrum of training forecast errors, gains more than the single-length-scale Gaussian
        OI. A learned method may also correct the model error itself."""
    metrics = DA_METRICS
    case_dim = "traj"
    variables = ("q",)
    optional_dims = ("member",)
    fraction = 0.2
    stride = 5
    lead_hours = 48
    #: analysis days end this many days before the end (qg-fc48 needs truth after them)
    tail_days = 0

    def __init__(self, fraction: float | None = None):
        if fraction is not None:
            self.fraction = float(fraction)
        self.root = None
        self._bg_cache = {}
        self.description = __doc__

    # -- data ----------------------------------------------------------------------
    def analysis_days(self, size: str) -> np.ndarray:
        n_days = Q.config(size)["n_days"]
        lead = int(round(self.lead_hours / 24))
        return np.arange(lead, n_days - self.tail_days, self.stride).astype(np.float64)

    def n_obs(self, size: str) -> int:
        return Q.n_random(size, self.fraction)

    def backgrounds(self, size: str, split: str = "test", root=None) -> xr.DataArray:
        """LR forecasts of ``lead_hours`` from the coarse-grained truth, (traj, time, lev, y, x)."""
        root = root if root is not None else self.root
        key = (size, split, str(self.data_dir(size, root)), self.lead_hours)
        if key not in self._bg_cache:
            f = self.fields(size, split, root)
            days = self.analysis_days(size)
            lead = self.lead_hours / 24
            q0 = f["q"].sel(time=days - lead).transpose("traj", "time", "lev", "y", "x").values.astype(np.float64)
            m = Q.lr_model(size)
            with torch.no_grad():
                qb = Q.forecast(m, torch.as_tensor(q0), self.lead_hours).numpy()
            coords = {k: f[k] for k in ("traj", "lev", "y", "x")}
            coords["time"] = ("time", days, f["time"].attrs)
            self._bg_cache[key] = xr.DataArray(qb, dims=("traj", "time", "lev", "y", "x"), coords=coords,
                                               attrs={"units": "s-1", "long_name": f"{self.lead_hours} h LR forecast from truth"})
        return self._bg_cache[key]

    def cases(self, size: str, root=None, split: str = "test"):
        root = root if root is not None else self.root
        bg = self.backgrounds(size, split, root)
        for i, tr in enumerate(bg["traj"].values):
            rows = Q.load_obs(self, size, split, "random", root, traj=int(tr))
            yield self.make_case(size, bg.isel(traj=i), rows, split)

    def make_case(self, size: str, bg: xr.DataArray, rows: dict, split: str) -> xr.Dataset:
        days = bg["time"].values
        traj = int(bg["traj"].values) if "traj" in bg.coords else 0
        o = Q.daily_random_obs(rows, days, self.n_obs(size), traj=traj)
        ds = xr.Dataset({"background": bg.drop_vars("traj", errors="ignore"),
                         **{f"obs_{k}": (("time", "obs"), o[k]) for k in ("x", "y", "value", "sigma")}})
        ds = ds.assign_coords(traj=traj)
        ds.attrs.update(L_km=Q.domain_km(size), split=split, size=size, fraction=self.fraction,
                        lead_hours=self.lead_hours)
        return ds

    # -- submissions -----------------------------------------------------------------
    def _coords(self, size: str, root=None, split: str = "test") -> dict:
        f = self.fields(size, split, root)
        coords = {k: f[k] for k in ("traj", "lev", "y", "x")}
        coords["time"] = ("time", self.analysis_days(size), f["time"].attrs)
        return coords

    def template(self, size: str, root=None) -> xr.Dataset:
        c = self._coords(size, root)
        shape = (len(c["traj"]), len(c["time"][1]), len(c["lev"]), len(c["y"]), len(c["x"]))
        q = xr.DataArray(np.full(shape, np.nan, dtype=np.float32), dims=("traj", "time", "lev", "y", "x"),
                         attrs={"units": "s-1", "long_name": "analysed potential vorticity anomaly"})
        return xr.Dataset({"q": q}, coords=c)

    def truth(self, size: str, root=None, split: str = "test") -> xr.Dataset:
        f = self.fields(size, split, root)
        q = f["q"].sel(time=self.analysis_days(size)).transpose("traj", "time", "lev", "y", "x")
        return xr.Dataset({"q": q.astype(np.float64)}).load()

    def analysis_truth(self, size: str, root=None, split: str = "test") -> xr.Dataset:
        """The true state at the analysis times (for tuning analyses on val; also in ``qg-fc48``)."""
        return QGDA.truth(self, size, root, split)

    # -- scoring -------------------------------------------------------------------------
    def score(self, pred: xr.Dataset, size: str, root=None, split: str = "test", n_boot: int = 1000):
        truth = self.truth(size, root, split)["q"]
        bg = self.backgrounds(size, split, root)
        return snapshot_scores(size, pred["q"], truth, bg, n_boot=n_boot)

    def quick_score(self, pred_q, truth_q, size: str) -> float:
        """µ(RMSE) of SSH without intervals (for tuning on val); arrays (..., 2, ny, nx)."""
        a = Q.ssh_of_q_np(size, np.asarray(pred_q))
        t = Q.ssh_of_q_np(size, np.asarray(truth_q))
        return float(1.0 - np.sqrt(((a - t) ** 2).sum() / (t ** 2).sum()))

    def info(self, size: str) -> dict:
        cfg = Q.config(size)
        return {"world": self.world, "size": size, "fraction": self.fraction, "obs_per_time": self.n_obs(size),
                "stride_days": self.stride, "lead_hours": self.lead_hours, "nx_lr": cfg["nx_lr"],
                "obs_sigma_m": cfg["ssh_sigma"], "n_analysis_times": len(self.analysis_days(size)),
                "bootstrap": "analysis times (cases)"}


def _as_cases(size: str, q: xr.DataArray):
    """(traj, time, [member], lev, y, x) -> (case, [member], ...) DataArrays of SSH and of q per layer."""
    mem = ("member",) if "member" in q.dims else ()
    q = q.transpose("traj", "time", *mem, "lev", "y", "x").astype(np.float64)
    ssh = Q.ssh_of_q_np(size, q.values)
    ssh = xr.DataArray(ssh, dims=("traj", "time", *mem, "y", "x"),
                       coords={k: q[k] for k in ("traj", "time", "y", "x")})
    return Q.stack_cases(ssh), Q.stack_cases(q.isel(lev=0, drop=True)), Q.stack_cases(q.isel(lev=1, drop=True))


def ensemble_scores(ens_ssh: xr.DataArray, truth_ssh: xr.DataArray, n_boot: int = 1000, seed: int = 0) -> dict:
    """Fair CRPS (m) and spread/skill of SSH ensembles (case, member, y, x), bootstrap over cases."""
    from metrics import bootstrap_ci, crps

    c = crps(ens_ssh, truth_ssh, dim=("y", "x"))
    cv = np.asarray(c.values)
    m = ens_ssh.sizes["member"]
    var = ens_ssh.var("member", ddof=1).mean(("y", "x")).values
    se = ((ens_ssh.mean("member") - truth_ssh) ** 2).mean(("y", "x")).values

    def ratio(i):
        return float(np.sqrt((m + 1) / m) * np.sqrt(var[i].mean() / se[i].mean()))

    all_i = np.arange(len(se))
    return {"crps": Score(float(cv.mean()), *bootstrap_ci(cv, n=n_boot, seed=seed)),
            "spread_skill": Score(ratio(all_i), *bootstrap_ci(ratio, n=n_boot, seed=seed, n_cases=len(se)))}


def snapshot_scores(size: str, pred_q: xr.DataArray, truth_q: xr.DataArray, bg_q: xr.DataArray | None = None,
                    n_boot: int = 1000, seed: int = 0) -> dict[str, Score]:
    """Scores of analyses q (traj, time, [member], lev, y, x): SSH µ/RMSE/σ, gain over bg, λiso;
    µ and RMSE of q1, q2; CRPS and spread/skill of SSH for ensembles."""
    from metrics.bootstrap import resample_indices

    ens = None
    if "member" in pred_q.dims:
        ens, _, _ = _as_cases(size, pred_q)
        pred_q = pred_q.mean("member")
    ps, p1, p2 = _as_cases(size, pred_q)
    ts, t1, t2 = _as_cases(size, truth_q)
    n = ts.sizes["case"]
    units = [np.array([i]) for i in range(n)]
    out = Q.rmse_family(ps, ts, units, n_boot, seed)
    out.update(Q.isotropic_score(ps, ts, units, n_boot, seed))
    for name, p, t in (("q1", p1, t1), ("q2", p2, t2)):
        fam = Q.rmse_family(p, t, units, n_boot, seed, prefix=f"{name}_")
        out[f"mu_{name}"] = fam[f"{name}_mu"]
        out[f"rmse_{name}"] = fam[f"{name}_rmse"]
    if bg_q is not None:
        bs, _, _ = _as_cases(size, bg_q)
        ea = ((ps - ts) ** 2).sum(("y", "x")).values
        eb = ((bs - ts) ** 2).sum(("y", "x")).values
        idx = resample_indices(n, n_boot, seed)
        boot = 1.0 - np.sqrt(ea[idx].sum(1) / eb[idx].sum(1))
        out["gain"] = Score(1.0 - np.sqrt(ea.sum() / eb.sum()), *Q._interval(boot))
        out["rmse_background"] = Score(float(np.sqrt(eb.sum() / (n * ts.sizes["y"] * ts.sizes["x"]))))
    if ens is not None:
        out.update(ensemble_scores(ens, ts, n_boot, seed))
    else:
        out["crps"] = Score(float("nan"), extra={"flag": "deterministic"})
        out["spread_skill"] = Score(float("nan"), extra={"flag": "deterministic"})
    return out


class QGDASparse(QGDA):
    name = "qg-da-sparse"
    summary = "one-step DA: 48 h LR background + random SSH obs (0.05 per LR cell) -> analysis of q"
    fraction = 0.05


class QGDADense(QGDA):
    name = "qg-da-dense"
    summary = "one-step DA: 48 h LR background + random SSH obs (1 per LR cell) -> analysis of q"
    fraction = 1.0


#: every challenge name of the one-step DA family (methods list it in ``applies_to``)
DA_CHALLENGES = ("qg-da", "qg-da-sparse", "qg-da-dense")
