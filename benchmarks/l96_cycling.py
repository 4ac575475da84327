"""Cycles per second of 3D-Var and the EnKF (ETKF) on the ``l96-cycle`` setup.

Three implementations of the same cycle (analysis, then the RK4 forecast to
the next cycle), for E independent experiments (1, 16, 64 by default):

- ``torch``: the methods' batched tensor code (``var3d_analysis``,
  ``etkf_analysis``, ``Lorenz96.step``), all E experiments in one call;
- ``harness``: the full ``bench run`` path, ``challenges.cycling.run`` calling
  ``Var3D.predict`` / ``EnKF.predict`` with an xarray case every cycle;
- ``numpy``: a plain NumPy loop over experiments of the same algorithms
  (3D-Var: CG in control space to the same tolerance; ETKF: the same
  symmetric-square-root transform with ``numpy.linalg.eigh``; RK4 vectorised
  over the members of one experiment, as DAPPER does).

Setup: N = 40, F = 8, dt = 0.05, every variable observed with R = I; truth
runs from spun-up random states; B = the climatological covariance of a
separate 4000-step run, 3D-Var scale 0.02; ETKF with 24 members and
inflation 1.015. Reported: batched cycles per second (one cycle of all E
experiments) and experiment-cycles per second (E x that), and the speed-up of
torch over the NumPy loop. The torch and NumPy analyses are compared after
the timed cycles (they must agree to round-off amplified by the chaos).

Run: ``python benchmarks/l96_cycling.py [--experiments 1 16 64] [--cycles 100]
[--threads 1] [--device cpu]``. Threads default to 1 (on a shared machine
multi-threaded BLAS on 40 x 40 matrices is slower, not faster).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__":
    _threads = "1"
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            _threads = sys.argv[i + 1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, _threads)

import numpy as np
import torch
import xarray as xr

from baselines.covariance import StateCovariance
from baselines.enkf import EnKF, etkf_analysis
from baselines.var3d import Var3D, var3d_analysis
from bench.results import hardware
from challenges import cycling
from data_scripts.l96 import Lorenz96

N, F, DT = 40, 8.0, 0.05
SCALE, INFL, MEMBERS, TOL = 0.02, 1.015, 24, 1e-8


# -- plain NumPy reference implementations -----------------------------------------------


def np_tendency(x):
    return (np.roll(x, -1, -1) - np.roll(x, 2, -1)) * np.roll(x, 1, -1) - x + F


def np_step(x):
    k1 = np_tendency(x)
    k2 = np_tendency(x + 0.5 * DT * k1)
    k3 = np_tendency(x + 0.5 * DT * k2)
    k4 = np_tendency(x + DT * k3)
    return x + DT / 6.0 * (k1 + 2.0 * (k2 + k3) + k4)


def np_var3d(xb, y, U, s):
    """One experiment: CG on (I + s U^T U) v = sqrt(s) U^T (y - xb) (all observed, R = I)."""
    rs_u = np.sqrt(s)
    b = rs_u * (U.T @ (y - xb))
    v = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rs = r @ r
    target = TOL**2 * rs
    for _ in range(len(b)):
        if rs <= target:
            break
        Ap = p + s * (U.T @ (U @ p))
        alpha = rs / (p @ Ap)
        v += alpha * p
        r -= alpha * Ap
        rs_new = r @ r
        p = r + (rs_new / rs) * p
        rs = rs_new
    return xb + rs_u * (U @ v)


def np_etkf(X, y, infl):
    """One experiment: symmetric square-root ETKF, all variables observed, R = I."""
    M = X.shape[0]
    xm = X.mean(0)
    A = (X - xm) * infl
    C = A @ A.T
    lam, V = np.linalg.eigh(C + (M - 1) * np.eye(M))
    w = V @ ((V.T @ (A @ (y - xm))) / lam)
    W = (V * np.sqrt((M - 1) / lam)) @ V.T
    return xm + (W + w[:, None]).T @ A


# -- experiment setup ---------------------------------------------------------------------


def setup(E: int, K: int, seed: int = 0):
    model = Lorenz96(N, F, DT)
    x0 = model.spinup(model.initial_condition(E + 1, seed=seed), 2000)
    clim = model.trajectory(x0[-1:], 4000)[0].numpy()
    truth = model.trajectory(x0[:E], K)[:, 1:].numpy()  # (E, K, N)
    obs = truth + np.random.default_rng(seed).standard_normal(truth.shape)
    cov = StateCovariance.from_samples(clim)
    g = np.random.default_rng(seed + 1)
    xb0 = truth[:, 0] + 2.0 * g.standard_normal((E, N))
    X0 = truth[:, 0][:, None] + g.standard_normal((E, MEMBERS, N))
    return model, obs, cov, xb0, X0


def run_torch(kind, model, obs, cov, start, device):
    y = torch.as_tensor(obs, device=device)
    E, K, _ = obs.shape
    rinv = torch.ones(E, N, dtype=torch.float64, device=device)
    covd = cov.to(device)
    param = torch.full((E,), SCALE if kind == "3dvar" else INFL, dtype=torch.float64, device=device)
    x = torch.as_tensor(start, device=device)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    sync()
    t = time.perf_counter()
    for k in range(K):
        if kind == "3dvar":
            x, _ = var3d_analysis(x, y[:, k], rinv, covd, param, tol=TOL)
        else:
            x = etkf_analysis(x, y[:, k], rinv, param)
        if k + 1 < K:
            x = model.step(x, 1)
    sync()
    return time.perf_counter() - t, x.cpu().numpy()


def run_numpy(kind, obs, cov, start):
    E, K, _ = obs.shape
    U = cov.sqrt.numpy()
    x = start.copy()
    t = time.perf_counter()
    for k in range(K):
        for e in range(E):
            x[e] = np_var3d(x[e], obs[e, k], U, SCALE) if kind == "3dvar" else np_etkf(x[e], obs[e, k], INFL)
        if k + 1 < K:
            for e in range(E):
                x[e] = np_step(x[e])
    return time.perf_counter() - t, x


class _Fixed:
    """A ``bench``-style method with fixed parameters (no fit), for the harness path."""

    state_dims = ("i",)


def run_harness(kind, model, obs, cov, start, device):
    E, K, _ = obs.shape
    ch = _Fixed()
    if kind == "3dvar":
        m = Var3D(challenge=ch, device=device)
        m.B, m.scale = cov.to(device), SCALE
    else:
        m = EnKF(challenge=ch, device=device)
        m.cov, m.inflation = cov.to(device), INFL
    dims = ("exp", "member", "i") if start.ndim == 3 else ("exp", "i")
    b0 = xr.DataArray(start, dims=dims)
    mask = np.ones((E, N), dtype=bool)

    def make_case(k, background):
        return xr.Dataset({"background": background, "y": (("exp", "i"), obs[:, k]),
                           "obs_mask": (("exp", "i"), mask), "sigma": ((), 1.0)}, coords={"cycle": k})

    prob = cycling.CyclingProblem(background0=b0, make_case=make_case, forecast=lambda x: model.step(x, 1),
                                  n_cycles=K, state_dims=("i",))
    t = time.perf_counter()
    cycling.run(m.predict, prob, store=False)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiments", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-harness", action="store_true", help="skip the xarray harness path")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = hardware(args.device).get("gpu") or hardware()["cpu"]
    print(f"# l96-cycle cycling speed: {args.cycles} cycles, torch {torch.__version__}, numpy {np.__version__}, "
          f"{args.threads} thread(s), device {args.device} ({cpu})")
    head = (f"{'method':<7} {'E':>4} | {'torch cyc/s':>11} {'numpy cyc/s':>11} {'harness cyc/s':>13} | "
            f"{'torch exp-cyc/s':>15} {'numpy exp-cyc/s':>15} | {'torch/numpy':>11} {'max |diff|':>10}")
    print(head)
    print("-" * len(head))
    for kind in ("3dvar", "enkf"):
        for E in args.experiments:
            model, obs, cov, xb0, X0 = setup(E, args.cycles)
            start = xb0 if kind == "3dvar" else X0
            run_torch(kind, model, obs[:, :3], cov, start, args.device)  # warm-up
            t_t, x_t = run_torch(kind, model, obs, cov, start, args.device)
            t_n, x_n = run_numpy(kind, obs, cov, start)
            t_h = float("nan") if args.no_harness else run_harness(kind, model, obs, cov, start, args.device)
            K = args.cycles
            print(f"{kind:<7} {E:>4} | {K / t_t:>11.1f} {K / t_n:>11.1f} {K / t_h:>13.1f} | "
                  f"{E * K / t_t:>15.0f} {E * K / t_n:>15.0f} | {t_n / t_t:>11.2f} {np.abs(x_t - x_n).max():>10.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
