"""How the QG challenges score predictions, composed from ``metrics`` (every number comes from there).

* ``map_scores``: daily SSH maps (traj, time, y, x) as in the ocean data
  challenge 2020a: µ, σ, RMSE, λx and λt (space-time spectra), isotropic λ.
  Intervals resample (trajectory, ``block_days``-day block) units for µ, σ,
  RMSE and isotropic λ, and (trajectory, y band) units of the space-time
  spectra for λx, λt.
* ``snapshot_scores``: analyses q (traj, time, [member], lev, y, x): SSH µ, σ,
  RMSE, gain over a background, isotropic λ; µ and RMSE of q per layer; CRPS,
  spread/skill and the rank histogram of SSH for ensembles. Intervals resample
  analysis times (cases).
"""
from __future__ import annotations

import lazy_loader as lazy
import numpy as np

from . import qg_world as W
from .base import Score

xr = lazy.load("xarray")
metrics = lazy.load("metrics")


def stack_cases(da, dims=("traj", "time")):
    """(traj, time, ...) -> (case, ...) with an integer ``case`` coordinate."""
    out = da.stack(case=dims).reset_index("case", drop=True)
    out = out.transpose("case", *[d for d in out.dims if d != "case"])
    return out.assign_coords(case=np.arange(out.sizes["case"]))


def time_block_units(n_traj: int, n_time: int, block: int) -> list[np.ndarray]:
    """Bootstrap units for cases stacked as (traj, time): consecutive blocks of ``block`` times
    per trajectory (the last, shorter block merged into the previous one)."""
    nb = max(1, n_time // block)
    edges = np.linspace(0, n_time, nb + 1).round().astype(int)
    return [tr * n_time + np.arange(edges[b], edges[b + 1]) for tr in range(n_traj) for b in range(nb)]


def rmse_family(pred, truth, units=None, prefix: str = "") -> dict[str, Score]:
    """rmse, mu, sigma (2020a) of (case, ...) arrays, resampling ``units`` of cases."""
    sums = metrics.per_time_sums(pred, truth, time="case")
    res = metrics.rmse_mu_sigma(sums.sq_err.values, sums.sq_ref.values, sums["count"].values, units)
    return {prefix + k: Score.of(v) for k, v in res.items()}


def isotropic_score(pred, truth, units=None, key: str = "lambda_iso_km") -> dict[str, Score]:
    """Isotropic effective resolution (km) over (case, y, x), resampling ``units``."""
    psd = metrics.isotropic_psd(pred, truth, t="case")
    a = psd.attrs
    res = metrics.isotropic_lambda(psd.psd_err.values, psd.psd_ref.values, psd.wavelength.values,
                                   2.0 * max(a["dx"], a["dy"]), 1.0 / a["dk"], units)
    return {key: Score.of(res)}


def spacetime_scores(pred, truth, n_bands: int = 4) -> dict[str, Score]:
    """λx (km) and λt (days) of the 2020a recipe over (traj, time, y, x), resampling (traj, y band) units."""
    psd = metrics.spacetime_psd(pred, truth, x="x", t="time", avg=("traj", "y"))
    res = metrics.spacetime_resolution(psd)
    ny = psd.sizes["y"]
    nb = max(1, min(n_bands, ny))
    band = np.arange(ny) * nb // ny
    psd_b = psd.assign_coords(band=("y", band)).groupby("band").mean("y")
    psd_b = psd_b.stack(unit=("traj", "band")).reset_index("unit", drop=True)
    psd_b.attrs.update(psd.attrs)
    ci = metrics.spectral_resolution_ci(psd_b, "unit")
    out = {}
    for key, name in (("lambda_x_km", "lambda_x"), ("lambda_t_days", "lambda_t")):
        flag = res["flags"][name]
        out[key] = Score(res[name], *ci[name], extra={} if flag == "ok" else {"flag": flag})
    return out


def map_scores(pred, truth, block_days: int = 30, spacetime: bool = True) -> dict[str, Score]:
    """2020a scores of daily SSH maps (traj, time, y, x): µ, σ, RMSE, λx, λt, isotropic λ (see module doc)."""
    pred = pred.transpose("traj", "time", "y", "x")
    truth = truth.transpose("traj", "time", "y", "x")
    units = time_block_units(truth.sizes["traj"], truth.sizes["time"], block_days)
    p, t = stack_cases(pred), stack_cases(truth)
    out = rmse_family(p, t, units)
    if spacetime:
        out.update(spacetime_scores(pred, truth))
    out.update(isotropic_score(p, t, units))
    return out


def _as_cases(size: str, q):
    """(traj, time, [member], lev, y, x) -> (case, [member], ...) DataArrays of SSH and of q per layer."""
    mem = ("member",) if "member" in q.dims else ()
    q = q.transpose("traj", "time", *mem, "lev", "y", "x").astype(np.float64)
    ssh = xr.DataArray(W.ssh_of_q_np(size, q.values), dims=("traj", "time", *mem, "y", "x"),
                       coords={k: q[k] for k in ("traj", "time", "y", "x")})
    return stack_cases(ssh), stack_cases(q.isel(lev=0, drop=True)), stack_cases(q.isel(lev=1, drop=True))


def ensemble_scores(ens_ssh, truth_ssh) -> dict[str, Score]:
    """Fair CRPS (m), spread/skill and rank histogram of SSH ensembles (case, member, y, x); bootstrap over cases."""
    err = metrics.case_errors(ens_ssh, truth_ssh, ("y", "x"))
    crps = np.asarray(err["crps"].values)
    ranks = metrics.rank_histogram(ens_ssh, truth_ssh)
    return {"crps": Score(float(crps.mean()), *metrics.bootstrap_ci(crps)),
            "spread_skill": Score.of(metrics.intervals.spread_skill(err["se"].values, err["var"].values,
                                                                    err["members"]),
                                     rank_histogram=ranks.values.tolist())}


def snapshot_scores(size: str, pred_q, truth_q, bg_q=None) -> dict[str, Score]:
    """Scores of analyses q (traj, time, [member], lev, y, x) against the truth (see module doc)."""
    ens = None
    if "member" in pred_q.dims:
        ens, _, _ = _as_cases(size, pred_q)
        pred_q = pred_q.mean("member")
    ps, p1, p2 = _as_cases(size, pred_q)
    ts, t1, t2 = _as_cases(size, truth_q)
    out = rmse_family(ps, ts)
    out.update(isotropic_score(ps, ts))
    for name, p, t in (("q1", p1, t1), ("q2", p2, t2)):
        fam = rmse_family(p, t, prefix=f"{name}_")
        out[f"mu_{name}"] = fam[f"{name}_mu"]
        out[f"rmse_{name}"] = fam[f"{name}_rmse"]
    if bg_q is not None:
        bs, _, _ = _as_cases(size, bg_q)
        v = {"a": ((ps - ts) ** 2).sum(("y", "x")).values, "b": ((bs - ts) ** 2).sum(("y", "x")).values}
        out["gain"] = Score.of(metrics.bootstrap_sums(v, lambda s: 1.0 - np.sqrt(s["a"] / s["b"])))
        out["rmse_background"] = Score(float(np.sqrt(v["b"].sum() / (len(v["b"]) * ts.sizes["y"] * ts.sizes["x"]))))
    if ens is not None:
        out.update(ensemble_scores(ens, ts))
    else:
        out["crps"] = Score.undefined("deterministic")
        out["spread_skill"] = Score.undefined("deterministic")
    return out
