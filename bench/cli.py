"""The ``bench`` command line.

Every user mistake ends in one sentence on stderr and a non-zero exit (2 for
bad input, 1 for a failed check), never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

from .errors import UserError

# Large torch CPU tensors on transparent huge pages (read by torch at its first allocation, so
# set before torch is imported). The solvers allocate and free 10-100 MB matrices many times;
# on 4 KB pages that cost up to half of a run in page faults (measured on tiny qg-map oi:
# 17 M minor faults, 45 % system time; with huge pages 0.36 M and 1.6x faster).
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

SIZES = ("tiny", "small", "full")


def _add_size(p, default="small"):
    p.add_argument("--size", default=default, help=f"dataset size: tiny, small or full (default {default})")


def _add_root(p):
    p.add_argument("--root", default=None, help="data root (default $BENCH_DATA, else ./data)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench", description="OSSE Bench: data, runs, scores and leaderboard.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("list", help="worlds, sizes, challenges and methods")

    data = sub.add_parser("data", help="generate or verify datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    g = dsub.add_parser("generate", help="simulate a world and write its train/val/test datasets")
    g.add_argument("world")
    _add_size(g)
    _add_root(g)
    g.add_argument("--scheduler", default=None,
                   help="'threads' (default), 'sync', or a dask.distributed address (tcp://host:8786)")
    g.add_argument("--workers", type=int, default=None,
                   help="threads of the local scheduler (default: one per core); the bytes do not depend on it")
    g.add_argument("--force", action="store_true", help="replace an existing dataset")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    v = dsub.add_parser("verify", help="recompute every array's sha256, and say whether the dataset is the canonical one")
    v.add_argument("world")
    _add_size(v)
    _add_root(v)
    v.add_argument("--record", action="store_true",
                   help="(maintainers) record this dataset's fingerprint as canonical in data_scripts/fingerprints.json")

    from . import commands

    commands.add_parsers(sub)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 2
    try:
        from . import commands

        if args.command in ("run", "score", "data", "plot"):
            from data_scripts.qg import keep_freed_memory

            keep_freed_memory()
        return int(commands.dispatch(args) or 0)
    except UserError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC: outputs are written all-or-nothing, so nothing half-written is left
            print(f"bench: the disk is full ({exc.filename or 'while writing'}); nothing was written", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("bench: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
