"""Benchmark: scoring one year of daily 64x64 maps with ``metrics`` vs a plain 2020a code path.

Builds a synthetic truth (red spectrum in space and time, doubly periodic, 365 x 64 x 64)
and an imperfect reconstruction (truth smoothed in space and time plus noise), then times

* ours: µ, σ, RMSE, λx, λt (``metrics.scores`` + ``metrics.spectral_resolution``), then the
  full suite with bootstrap intervals (µ/σ/RMSE over days, λx/λt over y rows) and the
  isotropic λ, on numpy- and on dask-backed inputs;
* reference: a straightforward re-implementation of the ODC 2020a path
  (``rmse_based_scores`` and ``psd_based_scores`` of ``src/mod_eval.py``): an xarray
  expression for µ/σ, a loop over y rows each doing the 2-D (time, x) mean removal, Hann
  window (``numpy.hanning``, xrft ``window=True``), ``numpy.fft.fft2`` + ``fftshift``, the
  positive-quadrant selection, and ``matplotlib.pyplot.contour`` at level 0.5 whose
  level path vertices give λx, λt (``get_paths()`` replaces the removed ``.collections``).

Checks that both give the same µ, σ, λx, λt and prints times (best of ``--repeat``) and
ratios. Run: ``python benchmarks/metrics.py`` (single-threaded BLAS/FFT recommended:
``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import matplotlib

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # this file is named like the package

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

import metrics  # noqa: E402


def synthetic_year(nt: int = 365, n: int = 64, dx: float = 15.625, seed: int = 0):
    """(truth, reconstruction) DataArrays (time, y, x): km and days coordinates, SSH-like in m."""
    rng = np.random.default_rng(seed)
    shape = (nt, n, n)
    spec = np.fft.rfftn(rng.standard_normal(shape), axes=(0, 1, 2))
    f = np.fft.fftfreq(nt)[:, None, None]
    k = np.hypot(np.fft.fftfreq(n)[None, :, None], np.fft.rfftfreq(n)[None, None, :])
    amp = (1.0 / n**2 + k**2) ** (-1.0) * (1.0 / nt**2 + f**2) ** (-0.75)
    truth = np.fft.irfftn(spec * amp, s=shape, axes=(0, 1, 2))
    scale = 0.1 / truth.std()
    smooth = np.exp(-((k / 0.08) ** 2) - (f / 0.05) ** 2)
    recon = np.fft.irfftn(spec * amp * smooth, s=shape, axes=(0, 1, 2)) * scale
    recon += 0.01 * rng.standard_normal(shape)
    truth *= scale
    coords = {"time": np.arange(nt, dtype=float), "y": np.arange(n) * dx, "x": np.arange(n) * dx}
    mk = lambda a: xr.DataArray(a, dims=("time", "y", "x"), coords=coords, attrs={"units": "m"})  # noqa: E731
    return mk(truth), mk(recon)


def reference_2020a(pred: xr.DataArray, ref: xr.DataArray) -> dict:
    """Plain re-implementation of the 2020a scoring path (see module doc); returns mu, sigma, lambda_x, lambda_t."""
    err_da = pred - ref
    rmse_t = 1.0 - np.sqrt((err_da**2).mean(dim=("x", "y"))) / np.sqrt((ref**2).mean(dim=("x", "y")))
    sigma = float(rmse_t.std().values)
    mu = float(1.0 - np.sqrt((err_da**2).mean()) / np.sqrt((ref**2).mean()))

    err = err_da.transpose("time", "y", "x").values
    sig = ref.transpose("time", "y", "x").values
    nt, ny, nx = err.shape
    dt = float(ref.time[1] - ref.time[0])
    dx = float(ref.x[1] - ref.x[0])
    window = np.hanning(nt)[:, None] * np.hanning(nx)[None, :]
    psd_err = np.zeros((nt, nx))
    psd_sig = np.zeros((nt, nx))
    for j in range(ny):
        for field, acc in ((err[:, j, :], psd_err), (sig[:, j, :], psd_sig)):
            a = (field - field.mean()) * window
            acc += np.abs(np.fft.fftshift(np.fft.fft2(a))) ** 2
    psd_err /= ny
    psd_sig /= ny
    freq_t = np.fft.fftshift(np.fft.fftfreq(nt, dt))
    freq_x = np.fft.fftshift(np.fft.fftfreq(nx, dx))
    it, ix = freq_t > 0, freq_x > 0
    score = 1.0 - psd_err[np.ix_(it, ix)] / psd_sig[np.ix_(it, ix)]

    fig = plt.figure()
    cs = plt.contour(1.0 / freq_x[ix], 1.0 / freq_t[it], score, [0.5])
    paths = cs.get_paths()
    plt.close(fig)
    verts = np.concatenate([p.vertices for p in paths if len(p.vertices)])
    return {"mu": mu, "sigma": sigma, "lambda_x": float(verts[:, 0].min()), "lambda_t": float(verts[:, 1].min())}


def ours_core(pred: xr.DataArray, ref: xr.DataArray) -> dict:
    s = metrics.scores(pred, ref)
    r = metrics.spectral_resolution(pred, ref, x="x", t="time", avg="y")
    return {"mu": s["mu"], "sigma": s["sigma"], "lambda_x": r["lambda_x"], "lambda_t": r["lambda_t"]}


def ours_full(pred: xr.DataArray, ref: xr.DataArray, n_boot: int = 1000) -> dict:
    sums = metrics.per_time_sums(pred, ref)
    out = metrics.scores_from_sums(sums)
    out["ci"] = metrics.scores_ci(sums, n=n_boot)
    psd = metrics.spacetime_psd(pred, ref, x="x", t="time", avg="y")
    r = metrics.spacetime_resolution(psd)
    out.update(lambda_x=r["lambda_x"], lambda_t=r["lambda_t"])
    out["ci"].update(metrics.spectral_resolution_ci(psd, "y", n=n_boot))
    out["lambda_iso"] = metrics.isotropic_resolution(pred, ref)["lambda_iso"]
    return out


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()

    ref, pred = synthetic_year()
    ref_d, pred_d = ref.chunk({"y": 16}), pred.chunk({"y": 16})

    a = reference_2020a(pred, ref)
    b = ours_core(pred, ref)
    c = ours_full(pred_d, ref_d, args.n_boot)
    for k in ("mu", "sigma", "lambda_x", "lambda_t"):
        if not np.isclose(a[k], b[k], rtol=1e-9, atol=1e-12) or not np.isclose(b[k], c[k], rtol=1e-9, atol=1e-12):
            raise SystemExit(f"MISMATCH {k}: reference {a[k]!r}, ours {b[k]!r}, ours on dask {c[k]!r}")

    t_ref = best_time(lambda: reference_2020a(pred, ref), args.repeat)
    t_core = best_time(lambda: ours_core(pred, ref), args.repeat)
    t_full = best_time(lambda: ours_full(pred, ref, args.n_boot), args.repeat)
    t_full_d = best_time(lambda: ours_full(pred_d, ref_d, args.n_boot), args.repeat)

    print(f"data: 365 x 64 x 64 float64 daily maps; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"mu={b['mu']:.4f} sigma={b['sigma']:.4f} lambda_x={b['lambda_x']:.2f} km "
          f"lambda_t={b['lambda_t']:.2f} d lambda_iso={c['lambda_iso']:.2f} km (reference agrees)")
    print("95% CI: " + ", ".join(f"{k}=({lo:.4g}, {hi:.4g})" for k, (lo, hi) in c["ci"].items()))
    print(f"reference 2020a path (mu, sigma, lambda_x, lambda_t): {t_ref * 1e3:8.1f} ms")
    print(f"ours, same scores:                                    {t_core * 1e3:8.1f} ms  "
          f"(reference / ours = {t_ref / t_core:.1f}x)")
    print(f"ours, full suite + {args.n_boot} bootstrap resamples, numpy:   {t_full * 1e3:8.1f} ms")
    print(f"ours, full suite + {args.n_boot} bootstrap resamples, dask:    {t_full_d * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
