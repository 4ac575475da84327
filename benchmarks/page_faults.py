"""Page-fault cost of the solvers' large temporaries, with and without huge pages.

``bench`` sets ``THP_MEM_ALLOC_ENABLE=1`` (torch then puts CPU tensors of 2 MB
and more on transparent huge pages) and raises glibc's mmap threshold
(``data_scripts.qg.keep_freed_memory``). This script measures what that buys
on a representative kernel: batched Gaussian-covariance OI solves
(``baselines.oi.solve_gaussian_oi``: build an P x P covariance, Cholesky,
solve, estimate a grid), the inner loop of ``qg-map oi``, repeated with fresh
observations. Each configuration runs in its own subprocess (torch reads the
variable once, at its first allocation), interleaved, one thread; reported:
wall, user and system seconds, minor page faults, and the speed-up of the
``bench`` setting over plain 4 KB pages in the same run of this script.

Run: ``python benchmarks/page_faults.py [--obs 1500 3000] [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
if {keep}:
    from data_scripts.qg import keep_freed_memory
    keep_freed_memory()
from baselines.oi import solve_gaussian_oi
P, B, n_iter = {P}, {B}, {n_iter}
g = torch.Generator().manual_seed(0)
L, nx = 1000.0, 32
xg = ((torch.arange(nx, dtype=torch.float64) + 0.5) * L / nx).expand(B, -1)
t0 = time.perf_counter()
for _ in range(n_iter):
    ox, oy = (torch.rand(B, P, generator=g, dtype=torch.float64) * L for _ in range(2))
    ot = torch.rand(B, P, generator=g, dtype=torch.float64) * 40.0
    d = torch.randn(B, P, generator=g, dtype=torch.float64)
    R = torch.full((B, P), 0.1, dtype=torch.float64)
    mask = torch.ones(B, P, dtype=torch.bool)
    gt = torch.linspace(15.0, 25.0, 10, dtype=torch.float64).expand(B, -1)
    solve_gaussian_oi(ox, oy, ot, d, R, mask, xg, xg, gt, 45.0, 20.0, 1.0, L)
wall = time.perf_counter() - t0
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(wall=wall, user=r.ru_utime, sys=r.ru_stime, minflt=r.ru_minflt)))
"""

SETTINGS = {"4 KB pages": dict(thp="0", keep=False), "bench (huge pages + kept blocks)": dict(thp="1", keep=True)}


def run_child(setting: dict, P: int, B: int, n_iter: int) -> dict:
    env = dict(os.environ, THP_MEM_ALLOC_ENABLE=setting["thp"], OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = CHILD.format(keep=setting["keep"], P=P, B=B, n_iter=n_iter)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--obs", type=int, nargs="+", default=[1500, 3000], help="observations per system")
    ap.add_argument("--batch", type=int, default=4, help="systems per call")
    ap.add_argument("--iters", type=int, default=6, help="calls per subprocess")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats (best wall kept)")
    args = ap.parse_args(argv)
    print(f"{'P':>6} {'setting':<34} {'wall s':>8} {'user s':>8} {'sys s':>8} {'minor faults':>13}")
    for P in args.obs:
        best = {}
        for _ in range(args.repeats):
            for name, setting in SETTINGS.items():
                r = run_child(setting, P, args.batch, args.iters)
                if name not in best or r["wall"] < best[name]["wall"]:
                    best[name] = r
        for name, r in best.items():
            print(f"{P:>6} {name:<34} {r['wall']:>8.2f} {r['user']:>8.2f} {r['sys']:>8.2f} {r['minflt']:>13,d}")
        base, ours = best["4 KB pages"], best["bench (huge pages + kept blocks)"]
        print(f"{P:>6} speed-up of the bench setting: {base['wall'] / ours['wall']:.2f}x")


if __name__ == "__main__":
    main()
