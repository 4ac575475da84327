"""Time ``bench score`` on one qg-map and one qg-cycle submission (size small by default).

The submission is the truth plus seeded noise (so every score is non-trivial);
each is scored ``--repeat`` times through ``bench.runner.score_submission``
(validation, scoring with 1000-resample bootstrap intervals, the
all-or-nothing write) and the fastest wall time is printed. Run it in two
checkouts to compare code versions on the same machine and data:

    BENCH_DATA=... python benchmarks/scoring.py --size small

Figures: benchmarks/README_scoring.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="small")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import numpy as np
    import torch

    from bench.registry import get_challenge
    from bench.runner import score_submission

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    os.chdir(tmp)
    for name in ("qg-map", "qg-cycle"):
        ch = get_challenge(name)
        truth = ch.truth(args.size)
        var = list(truth.data_vars)[0]
        rng = np.random.default_rng(0)
        sub = truth.copy(deep=True)
        sub[var].values += 0.3 * float(truth[var].std()) * rng.standard_normal(truth[var].shape)
        path = tmp / f"{name}.nc"
        sub.to_netcdf(path)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            score_submission(name, str(path), "bench-sub", args.size, results_dir=str(tmp / "res"), overwrite=True)
            times.append(time.perf_counter() - t0)
        print(f"{name:<10} size {args.size}: bench score {min(times):.2f} s (fastest of {args.repeat})")


if __name__ == "__main__":
    main()
