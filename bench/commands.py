"""Command implementations behind ``bench.cli`` (one function per command)."""
from __future__ import annotations

import sys

from .errors import UserError

SIZES = ("tiny", "small", "full")


def add_parsers(sub) -> None:
    """Harness commands (run, score, template, leaderboard, plot) register here."""
    from . import harness_cli

    harness_cli.add_parsers(sub)


def dispatch(args) -> int:
    if args.command == "list":
        return cmd_list()
    if args.command == "data":
        if args.data_command == "generate":
            return cmd_generate(args)
        if args.data_command == "verify":
            return cmd_verify(args)
        raise UserError("say 'bench data generate WORLD' or 'bench data verify WORLD'")
    from . import harness_cli

    return harness_cli.dispatch(args)


def _check_world_size(world: str, size: str) -> None:
    from data_scripts.config import WORLDS

    if world not in WORLDS:
        raise UserError(f"unknown world {world!r}; choose one of: {', '.join(WORLDS)}")
    if size not in SIZES:
        raise UserError(f"unknown size {size!r}; choose one of: {', '.join(SIZES)}")


def cmd_list() -> int:
    from data_scripts.config import WORLDS

    from .registry import applicable, challenges, methods

    print("Worlds (sizes: " + ", ".join(SIZES) + ")")
    for name, text in WORLDS.items():
        print(f"  {name:<8} {text}")
    chs, ms = challenges(), methods()
    w = max(len(n) for n in (*chs, *ms))
    print("Challenges (family, geometry, observations)")
    for name, ch in chs.items():
        print(f"  {name:<{w}} {ch.summary}  [{ch.family}, {ch.geometry_kind}, {ch.observes}]")
    print("Methods (what they support) and the challenges they apply to")
    for name, cls in ms.items():
        fits = [c for c, ch in chs.items() if applicable(cls, ch)]
        print(f"  {name:<{w}} {cls.summary}")
        print(f"  {'':<{w}}   supports {cls.supports.describe()}: {', '.join(fits)}")
    return 0


def cmd_generate(args) -> int:
    from data_scripts.generate import GenerationError, generate

    _check_world_size(args.world, args.size)
    try:
        path = generate(args.world, args.size, root=args.root, scheduler=args.scheduler,
                        force=args.force, progress=not args.quiet, workers=args.workers)
    except GenerationError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {path}")
    return 0


def cmd_verify(args) -> int:
    from data_scripts.generate import dataset_path
    from data_scripts.manifest import MANIFEST, canonical_status, record_canonical, verify

    _check_world_size(args.world, args.size)
    path = dataset_path(args.world, args.size, args.root)
    if not (path / MANIFEST).exists():
        raise UserError(f"no dataset at {path}; run 'bench data generate {args.world} --size {args.size}' first")
    problems = verify(path)
    if problems:
        for p in problems:
            print(f"bench: {p}", file=sys.stderr)
        print(f"bench: {path} is corrupted ({len(problems)} problem(s)); regenerate it with --force", file=sys.stderr)
        return 1
    print(f"{path}: every array matches its sha256")
    if args.record:
        print(f"recorded {record_canonical(path)} as canonical")
    canonical, sentence = canonical_status(path)
    print(f"{path}: {'warning: ' if canonical is False else ''}{sentence}")
    return 0
