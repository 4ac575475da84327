"""``bench plot``: figures of a scored run or submission, to PNG.

Reads the prediction saved under ``runs/<challenge>/<size>/<name>/`` and the
challenge's truth, maps both to the challenge's display variables
(``Challenge.display``: SSH for the QG state challenges, whose primary score
is SSH), takes the ensemble mean of an ensemble (the spread is drawn too), and
writes, with units and axis labels:

* 2-D fields: maps of truth, prediction and error (the error on its own
  colour scale) of the first test case at three times (and leads), and the
  isotropic PSD-score curve with its 0.5 crossing, the effective resolution,
  marked;
* 1-D rings (Lorenz-96): a Hovmöller diagram of the last ``HOVMOLLER_STEPS``
  analyses of the first case (truth, prediction, error on its own scale);
* the RMSE against time (or lead), with the RMS of the truth for reference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError
from .registry import get_challenge
from .runner import prediction_path

HOVMOLLER_STEPS = 120
CASE_DIMS = ("traj", "case", "trial")


def plot(challenge_name: str, name: str, size: str = "small", root=None, out=None) -> list[Path]:
    import matplotlib
    import xarray as xr

    matplotlib.use("Agg")
    ch = get_challenge(challenge_name)
    src = prediction_path(ch.name, size, name)
    if not src.exists():
        raise UserError(f"no saved prediction for {name!r} on {ch.name}/{size}; run 'bench run {ch.name} {name} "
                        f"--size {size}' or 'bench score ... --name {name}' first")
    pred = xr.open_zarr(src, consolidated=False).load()[list(ch.variables)]
    truth = ch.truth(size, root).load()
    spread = None
    if "member" in pred.dims:
        spread = ch.display(pred, size).std("member")
        pred = pred.mean("member")
    pred, truth = ch.display(pred, size), ch.display(truth, size)
    out = Path(out) if out else src.parent
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for var in pred.data_vars:
        p, t = pred[var], truth[var]
        units = t.attrs.get("units", "")
        label = f"{t.attrs.get('long_name', var)}" + (f" ({units})" if units else "")
        title = f"{ch.name} / {size} / {name}: {var}"
        first = {d: 0 for d in p.dims if d in CASE_DIMS}
        p0, t0 = p.isel(first), t.isel(first)
        if {"x", "y"} <= set(p.dims):
            written.append(_maps(p0, t0, out / f"{var}_maps.png", title, label))
            written.append(_psd_score(p, t, out / f"{var}_psd_score.png", title))
        elif "i" in p.dims and "time" in p.dims:
            written.append(_hovmoller(p0, t0, out / f"{var}_hovmoller.png", title, label))
        if "time" in p.dims or "lead" in p.dims:
            s = None if spread is None else spread[var]
            written.append(_rmse_time(p, t, s, out / f"{var}_rmse.png", title, units))
    return written


def _maps(p, t, path: Path, title: str, label: str) -> Path:
    import matplotlib.pyplot as plt

    extra = [d for d in p.dims if d not in ("time", "x", "y")]
    p, t = p.isel({d: -1 for d in extra}), t.isel({d: -1 for d in extra})  # the last lead of a forecast
    times = p["time"].values if "time" in p.dims else [None]
    picks = [times[i] for i in sorted({0, len(times) // 2, len(times) - 1})]
    fig, axes = plt.subplots(len(picks), 3, figsize=(11, 3.3 * len(picks)), squeeze=False)
    vmax = float(np.nanmax(np.abs(t.values)))
    emax = float(np.nanmax(np.abs((p - t).values))) or vmax
    xu = p["x"].attrs.get("units", "km")
    for row, tt in enumerate(picks):
        sel = {"time": tt} if tt is not None else {}
        tr, pr = t.sel(sel), p.sel(sel)
        for col, (fld, lab, cmap, vm) in enumerate([(tr, "truth", "RdBu_r", vmax), (pr, "prediction", "RdBu_r", vmax),
                                                    (pr - tr, "error (own scale)", "PuOr_r", emax)]):
            ax = axes[row, col]
            im = ax.pcolormesh(fld["x"], fld["y"], fld.transpose("y", "x"), cmap=cmap, vmin=-vm, vmax=vm,
                               shading="auto")
            ax.set_aspect("equal")
            ax.set_xlabel(f"x ({xu})")
            ax.set_ylabel(f"y ({xu})")
            ax.set_title(lab + (f", t = {float(tt):g} d" if tt is not None else ""), fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    fig.suptitle(title + (f", lead {int(p['lead'])} h" if "lead" in extra and "lead" in p.coords else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _hovmoller(p, t, path, title, label):
    import matplotlib.pyplot as plt

    extra = [d for d in p.dims if d not in ("time", "i")]
    p, t = p.isel({d: -1 for d in extra}), t.isel({d: -1 for d in extra})
    window = slice(max(0, p.sizes["time"] - HOVMOLLER_STEPS), None)
    p, t = p.isel(time=window), t.isel(time=window)
    err = p - t
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharey=True)
    vmax = float(np.nanmax(np.abs(t.values)))
    emax = float(np.nanmax(np.abs(err.values))) or vmax
    for ax, fld, lab, cmap, vm in zip(axes, (t, p, err), ("truth", "prediction", "error (own scale)"),
                                      ("RdBu_r", "RdBu_r", "PuOr_r"), (vmax, vmax, emax)):
        im = ax.pcolormesh(fld["i"], fld["time"], fld.transpose("time", "i"), cmap=cmap, vmin=-vm, vmax=vm,
                           shading="auto")
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel("variable i")
        fig.colorbar(im, ax=ax, label=label)
    axes[0].set_ylabel(f"time ({t['time'].attrs.get('units', 'days')})")
    fig.suptitle(f"{title}: last {p.sizes['time']} analyses")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _rmse_time(p, t, spread, path, title, units):
    import matplotlib.pyplot as plt

    axis = "time" if "time" in p.dims else "lead"
    other = [d for d in p.dims if d != axis]
    err = ((p - t) ** 2).mean(other) ** 0.5
    rms = (t ** 2).mean([d for d in t.dims if d != axis]) ** 0.5
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.plot(err[axis], err, label="RMSE")
    if spread is not None:
        ax.plot(err[axis], (spread ** 2).mean([d for d in spread.dims if d != axis]) ** 0.5, label="ensemble spread")
    ax.plot(rms[axis], rms, "k--", lw=0.8, label="RMS of truth")
    ax.set_xlabel(f"{axis} ({p[axis].attrs.get('units', 'days' if axis == 'time' else 'hours')})")
    ax.set_ylabel(f"RMSE ({units})" if units else "RMSE")
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _psd_score(p, t, path, title):
    import matplotlib.pyplot as plt

    from metrics import isotropic_resolution

    dims = tuple(d for d in p.dims if d not in ("x", "y"))
    res = isotropic_resolution(p, t, t=dims)
    score = res["score"]
    wl = score["wavelength"].values
    xu = p["x"].attrs.get("units", "km")
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.semilogx(wl, score, label="isotropic PSD score")
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    lam, flag = res["lambda_iso"], res["flags"]["lambda_iso"]
    if np.isfinite(lam):
        ax.axvline(lam, color="C3", lw=1.0)
        ax.annotate(f"λ = {lam:.0f} {xu}" + ("" if flag == "ok" else f" ({flag})"), (lam, 0.52), color="C3",
                    fontsize=8)
    ax.set_xlabel(f"wavelength ({xu})")
    ax.set_ylabel("1 - PSD(err) / PSD(truth)")
    ax.set_ylim(-0.2, 1.05)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
