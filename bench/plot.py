"""``bench plot``: figures of a scored run or submission, to PNG.

Reads the prediction saved under ``runs/<challenge>/<size>/<name>/`` and the
challenge's truth, and writes: maps (truth, prediction, error) of the first
test case, RMSE against time, and the spectral score curve for gridded
fields (or a Hovmöller diagram for 1-D states such as Lorenz-96).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .errors import UserError
from .registry import get_challenge
from .runner import prediction_path


def plot(challenge_name: str, name: str, size: str = "small", root=None, out=None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    ch = get_challenge(challenge_name)
    src = prediction_path(ch.name, size, name)
    if not src.exists():
        raise UserError(f"no saved prediction for {name!r} on {ch.name}/{size}; run 'bench run {ch.name} {name} "
                        f"--size {size}' or 'bench score ... --name {name}' first")
    pred = xr.open_zarr(src, consolidated=False).load()
    truth = ch.truth(size, root).load()
    out = Path(out) if out else src.parent
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for var in pred.data_vars:
        p, t = pred[var], truth[var]
        case = {d: 0 for d in p.dims if d not in ("time", "x", "y", "i", "lead")}
        p0, t0 = p.isel(case), t.isel(case)
        if {"x", "y"} <= set(p.dims):
            written.append(_maps(p0, t0, out / f"{var}_maps.png", f"{ch.name} {name}: {var}"))
            written.append(_psd_score(p, t, out / f"{var}_psd_score.png", f"{ch.name} {name}"))
        elif "i" in p.dims and "time" in p.dims:
            written.append(_hovmoller(p0, t0, out / f"{var}_hovmoller.png", f"{ch.name} {name}: {var}"))
        if "time" in p.dims or "lead" in p.dims:
            written.append(_rmse_time(p, t, out / f"{var}_rmse.png", f"{ch.name} {name}: {var}"))
    return written


def _maps(p: xr.DataArray, t: xr.DataArray, path: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    times = p["time"].values if "time" in p.dims else [None]
    picks = [times[i] for i in sorted({0, len(times) // 2, len(times) - 1})]
    fig, axes = plt.subplots(len(picks), 3, figsize=(10, 3.1 * len(picks)), squeeze=False)
    vmax = float(np.nanmax(np.abs(t.values)))
    for row, tt in enumerate(picks):
        sel = {"time": tt} if tt is not None else {}
        tr, pr = t.sel(sel), p.sel(sel)
        for col, (fld, lab, cmap) in enumerate([(tr, "truth", "RdBu_r"), (pr, "prediction", "RdBu_r"),
                                                 (pr - tr, "error", "PuOr_r")]):
            ax = axes[row, col]
            im = ax.pcolormesh(fld["x"], fld["y"], fld.transpose("y", "x"), cmap=cmap, vmin=-vmax, vmax=vmax,
                               shading="auto")
            ax.set_aspect("equal")
            ax.set_title(f"{lab}" + (f", t = {float(tt):g} d" if tt is not None else ""), fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _hovmoller(p, t, path, title):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5), sharey=True)
    vmax = float(np.nanmax(np.abs(t.values)))
    for ax, fld, lab in zip(axes, (t, p, p - t), ("truth", "prediction", "error")):
        im = ax.pcolormesh(fld["i"], fld["time"], fld.transpose("time", "i"), cmap="RdBu_r", vmin=-vmax,
                           vmax=vmax, shading="auto")
        ax.set_title(lab, fontsize=9)
        ax.set_xlabel("i")
    axes[0].set_ylabel("time (days)")
    fig.colorbar(im, ax=axes)
    fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _rmse_time(p, t, path, title):
    import matplotlib.pyplot as plt

    axis = "time" if "time" in p.dims else "lead"
    err = ((p - t) ** 2).mean([d for d in p.dims if d != axis]) ** 0.5
    rms = (t ** 2).mean([d for d in t.dims if d != axis]) ** 0.5
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(err[axis], err, label="RMSE")
    ax.plot(rms[axis], rms, "k--", lw=0.8, label="RMS of truth")
    ax.set_xlabel(f"{axis} ({p[axis].attrs.get('units', 'days' if axis == 'time' else 'h')})")
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _psd_score(p, t, path, title):
    import matplotlib.pyplot as plt

    from metrics import isotropic_resolution

    score = isotropic_resolution(p, t, t=tuple(d for d in p.dims if d not in ("x", "y")))["score"]
    wl = score["wavelength"].values
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.semilogx(wl, score)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xlabel("wavelength (km)")
    ax.set_ylabel("1 - PSD(err)/PSD(ref)")
    ax.set_ylim(-0.2, 1.05)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
