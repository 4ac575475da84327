"""CLI of the harness: run, score, template, leaderboard, plot."""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import UserError

SIZES = ("tiny", "small", "full")


def add_parsers(sub) -> None:
    r = sub.add_parser("run", help="data -> fit -> predict -> score -> results JSON")
    r.add_argument("challenge")
    r.add_argument("method")
    _common(r)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    r.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: fastest for these sizes on a shared machine; recorded)")
    r.add_argument("--name", default=None,
                   help="the row's name (default: the method's), e.g. to keep two settings of one method")
    r.add_argument("--devices", type=int, default=None,
                   help="learned methods: train on N processes (CPU) or GPUs with Lightning DDP")
    r.add_argument("--retrain", action="store_true", help="learned methods: train even if a matching checkpoint exists")
    r.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="set a method setting (its Config field; repeatable), e.g. --param members=16")
    r.add_argument("--quiet", action="store_true")

    s = sub.add_parser("score", help="validate and score a submission file (zarr or netCDF)")
    s.add_argument("challenge")
    s.add_argument("file")
    s.add_argument("--name", required=True, help="the row's name on the leaderboard")
    _common(s)
    s.add_argument("--overwrite", action="store_true", help="replace an existing result of that name")

    t = sub.add_parser("template", help="write an empty valid submission (values NaN) to fill in")
    t.add_argument("challenge")
    t.add_argument("out", help="output path ending in .zarr or .nc")
    t.add_argument("--size", default="small")
    t.add_argument("--root", default=None)

    lb = sub.add_parser("leaderboard", help="regenerate leaderboard/README.md from the results JSON files")
    lb.add_argument("--results", default=None, help="results directory (default leaderboard/results)")
    lb.add_argument("--out", default=None, help="output directory (default: the results directory's parent)")
    lb.add_argument("--check", action="store_true", help="fail if the tables are stale")

    p = sub.add_parser("plot", help="maps, PSD-score curve and RMSE vs time of a scored run, to PNG")
    p.add_argument("challenge")
    p.add_argument("name")
    p.add_argument("--size", default="small")
    p.add_argument("--root", default=None)
    p.add_argument("--out", default=None, help="output directory (default runs/<challenge>/<size>/<name>/)")


def _common(p) -> None:
    p.add_argument("--size", default="small", help="tiny, small (default) or full")
    p.add_argument("--results", default=None,
                   help="results directory (default runs/results, git-ignored; publish with --results leaderboard/results)")
    p.add_argument("--root", default=None, help="data root (default $BENCH_DATA, else ./data)")


def _size(size: str) -> str:
    if size not in SIZES:
        raise UserError(f"unknown size {size!r}; choose one of: {', '.join(SIZES)}")
    return size


def _device(device: str | None) -> str | None:
    """A usable torch device name, or one sentence saying why not."""
    if device is None:
        return None
    import re

    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise UserError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"--device {device} was asked for, but torch sees no CUDA GPU here; use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s)")
    return device


def _params(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param {item!r} must read KEY=VALUE")
        out[key.strip()] = value
    return out


def _run_params(args) -> dict:
    params = _params(args.param)
    if args.devices is not None:
        params["devices"] = str(args.devices)
    if args.retrain:
        params["retrain"] = "true"
    return params


def _threads(n: int) -> None:
    if n < 1:
        raise UserError(f"--threads must be at least 1, got {n}")
    import torch

    torch.set_num_threads(n)


def dispatch(args) -> int:
    cmd = args.command
    if cmd == "run":
        from .runner import format_scores, run

        device = _device(args.device)
        _threads(args.threads)
        res = run(args.challenge, args.method, _size(args.size), seed=args.seed, results_dir=args.results,
                  root=args.root, device=device, progress=not args.quiet, params=_run_params(args), name=args.name)
        print(format_scores(res))
        return 0
    if cmd == "score":
        from .runner import format_scores, score_submission

        res = score_submission(args.challenge, args.file, args.name, _size(args.size), args.results,
                               args.root, args.overwrite)
        print(format_scores(res))
        return 0
    if cmd == "template":
        return cmd_template(args)
    if cmd == "leaderboard":
        return cmd_leaderboard(args)
    if cmd == "plot":
        from .plot import plot

        for path in plot(args.challenge, args.name, _size(args.size), root=args.root, out=args.out):
            print(f"wrote {path}")
        return 0
    raise UserError(f"unknown command {cmd!r}")


def cmd_template(args) -> int:
    from .registry import get_challenge

    ch = get_challenge(args.challenge)
    out = Path(args.out)
    if out.suffix not in (".zarr", ".nc"):
        raise UserError(f"{out} must end in .zarr or .nc")
    if out.exists():
        raise UserError(f"{out} already exists; choose another path")
    from data_scripts.manifest import MANIFEST

    if not (ch.data_dir(_size(args.size), args.root) / MANIFEST).exists():
        raise UserError(f"no {ch.world}/{args.size} dataset; run 'bench data generate {ch.world} --size {args.size}' first")
    ds = ch.template(args.size, args.root)
    if not out.parent.is_dir():
        raise UserError(f"the directory {out.parent} does not exist")
    from data_scripts.atomic import transaction

    with transaction() as tx:
        tmp = tx.stage(out)
        if out.suffix == ".zarr":
            ds.to_zarr(tmp, mode="w", consolidated=False)
        else:
            ds.to_netcdf(tmp)
    dims = "; ".join(f"{k}{tuple(v.dims)}" for k, v in ds.data_vars.items())
    print(f"wrote {out}: fill {dims} and run 'bench score {ch.name} {out} --name NAME --size {args.size}'")
    return 0


def cmd_leaderboard(args) -> int:
    from . import leaderboard as L
    from .results import LEADERBOARD_DIR

    results = Path(args.results) if args.results else LEADERBOARD_DIR
    if not results.is_dir():
        raise UserError(f"results directory {results} does not exist")
    if not any(results.glob("*/*/*.json")):
        raise UserError(f"results directory {results} holds no results (<challenge>/<size>/<name>.json)")
    out = Path(args.out) if args.out else results.parent
    if args.check:
        stale = L.stale(results, out)
        if stale:
            print("bench: the leaderboard is stale: " + ", ".join(stale) + "; run 'bench leaderboard' and commit",
                  file=sys.stderr)
            return 1
        print("leaderboard is up to date")
        return 0
    for path in L.write(results, out):
        print(f"wrote {path}")
    return 0
