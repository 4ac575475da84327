"""Speed of ``data_scripts.qg.QGModel`` (steps/s) against pyqg's Cython+FFTW ``QGModel``.

Times ``step(q, n)`` (no autograd) at 64^2 and 256^2, batch 1 and 16, float64 and
float32, on CPU with a stated number of threads. When pyqg is importable (here, or
in the interpreter given by ``--pyqg-python`` / ``$PYQG_PYTHON``) it runs in a worker
process and is timed interleaved with ours (same config, same threads), so that
load from other processes hits both alike; ratios are ours / pyqg per trajectory.

    python benchmarks/qg_speed.py [--threads 1] [--sizes 64 256] [--batches 1 16]
        [--repeats 5] [--seconds 0.5] [--pyqg-python /path/to/python] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from data_scripts.qg import EDDY, QGModel, keep_freed_memory  # noqa: E402

PYQG_WORKER = r"""
import sys, time
import numpy as np
import pyqg
cfg = dict(beta=1.5e-11, rd=15000., delta=0.25, rek=5.787e-7, U1=0.025, U2=0., H1=500., L=1e6, dt=3600.,
           filterfac=23.6)
models = {}
print(pyqg.__version__, flush=True)
for line in sys.stdin:
    nx, n, ntd = map(int, line.split())
    if (nx, ntd) not in models:
        np.random.seed(0)
        m = pyqg.QGModel(nx=nx, log_level=0, ntd=ntd, **cfg)
        m.q = m.q * 1e3
        for _ in range(10):
            m._step_forward()
        models[nx, ntd] = m
    m = models[nx, ntd]
    t = time.perf_counter()
    for _ in range(n):
        m._step_forward()
    print(time.perf_counter() - t, flush=True)
"""


class PyqgWorker:
    """pyqg in a separate interpreter (it may live in another venv), driven over a pipe."""

    def __init__(self, python: str):
        self.p = subprocess.Popen([python, "-c", PYQG_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.version = self.p.stdout.readline().strip()

    def time(self, nx: int, n: int, ntd: int) -> float:
        self.p.stdin.write(f"{nx} {n} {ntd}\n")
        return float(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def find_pyqg_python(explicit: str | None) -> str | None:
    """An interpreter that can import pyqg: the given one, $PYQG_PYTHON, or this one."""
    for cand in (explicit, os.environ.get("PYQG_PYTHON"), sys.executable):
        if cand and subprocess.run([cand, "-c", "import pyqg"], capture_output=True, check=False).returncode == 0:
            return cand
    return None


def time_ours(m: QGModel, q: torch.Tensor, n: int) -> float:
    t = time.perf_counter()
    m.step(q, n)
    return time.perf_counter() - t


def calibrate(fn, seconds: float) -> int:
    """Number of steps that take about ``seconds``."""
    n = 4
    while True:
        dt = fn(n)
        if dt > seconds / 4 or n > 1_000_000:
            return max(4, int(n * seconds / max(dt, 1e-9)))
        n *= 4


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5, help="target duration of one timing")
    ap.add_argument("--pyqg-python", default=None)
    ap.add_argument("--no-malloc-tune", action="store_true", help="do not call qg.keep_freed_memory()")
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    tuned = False if args.no_malloc_tune else keep_freed_memory()
    py = find_pyqg_python(args.pyqg_python)
    worker = PyqgWorker(py) if py else None
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, threads={args.threads}, "
          f"malloc tuned={tuned}, pyqg={'%s (%s)' % (worker.version, py) if worker else 'not available'}")
    rows = []
    for nx in args.sizes:
        pyqg_best, npy = None, None
        for dtype in args.dtypes:
            for batch in args.batches:
                m = QGModel(nx=nx, **EDDY, dtype=getattr(torch, dtype))
                q = m.step(m.initial_condition(batch, seed=0) * 1e3, 10)
                n = calibrate(lambda k, m=m, q=q: time_ours(m, q, k), args.seconds)
                if worker and npy is None:
                    npy = calibrate(lambda k, nx=nx: worker.time(nx, k, args.threads), args.seconds)
                best, best_py = float("inf"), pyqg_best or float("inf")
                for _ in range(args.repeats):
                    best = min(best, time_ours(m, q, n) / n)
                    if npy:
                        best_py = min(best_py, worker.time(nx, npy, args.threads) / npy)
                if npy:
                    pyqg_best = best_py
                row = dict(nx=nx, batch=batch, dtype=dtype, threads=args.threads, ms_per_step=1e3 * best,
                           steps_per_s=1 / best, traj_steps_per_s=batch / best,
                           pyqg_steps_per_s=(1 / pyqg_best) if pyqg_best else None)
                row["speedup_vs_pyqg"] = (row["traj_steps_per_s"] / row["pyqg_steps_per_s"]
                                          if pyqg_best else None)
                rows.append(row)
                print(f"nx={nx:4d} batch={batch:3d} {dtype:8s} {1e3 * best:9.3f} ms/step "
                      f"{1 / best:9.1f} steps/s {batch / best:10.1f} traj-steps/s"
                      + (f" | pyqg {1 / pyqg_best:8.1f} steps/s, ratio {row['speedup_vs_pyqg']:.2f}"
                         if pyqg_best else ""), flush=True)
    if worker:
        worker.close()
    print("\n| nx | batch | dtype | threads | ms/step | traj-steps/s | pyqg steps/s | per-trajectory speed-up |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        p = f"{r['pyqg_steps_per_s']:.0f}" if r["pyqg_steps_per_s"] else "–"
        s = f"{r['speedup_vs_pyqg']:.2f}x" if r["speedup_vs_pyqg"] else "–"
        print(f"| {r['nx']} | {r['batch']} | {r['dtype']} | {r['threads']} | {r['ms_per_step']:.3f} | "
              f"{r['traj_steps_per_s']:.0f} | {p} | {s} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(torch=torch.__version__, threads=args.threads, malloc_tuned=tuned,
                           pyqg=worker.version if worker else None, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
