"""Shared set-up of the DiffDA benchmark scripts (``diffda_steps.py``, ``diffda_map_window.py``): the command
line (a trained checkpoint, size, challenge, members, ``--param``), the challenge's train and val splits, and
the trained model loaded with other sampling settings (never the test split)."""
from __future__ import annotations

import argparse

import torch

from bench.registry import get_challenge, get_method


def parser(doc: str, challenge: str, challenge_help: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--size", default="small")
    ap.add_argument("--challenge", default=challenge, help=challenge_help)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--param", action="append", default=[], help="key=value, any diffda setting")
    return ap


def params(args) -> dict:
    """The ``--param key=value`` settings."""
    return dict(p.split("=", 1) for p in args.param)


def setup(args):
    """(challenge, train split, val split, the --param settings), one torch thread."""
    torch.set_num_threads(1)
    ch = get_challenge(args.challenge)
    return ch, ch.split(args.size, "train"), ch.split(args.size, "val"), params(args)


def load(ch, train, val, args, **settings):
    """The checkpoint's diffda model with ``settings`` (over ``--param``), fitted (loaded) on the splits."""
    m = get_method("diffda", ch, {**params(args), "from_checkpoint": args.checkpoint, "members": args.members,
                                  **settings}, progress=False)
    m.context = {"workdir": "runs/benchmarks", "size": args.size}
    m.fit(train, val)
    return m
