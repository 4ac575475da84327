"""Results JSON: one file per scored run, ``<dir>/<challenge>/<size>/<name>.json``.

Fields: challenge, size, method, kind (method, submission or reference),
scores (each with a 95 % bootstrap interval over test cases, and a ``flag``
saying why where the value is null), columns (the challenge's leaderboard
columns when it was scored), runtime, hardware (CPU, cores, torch threads,
device, GPU), package versions, git commit, the dataset's fingerprint and
whether it is the canonical one, the challenge's settings, the method's
configuration, tuned parameters and tuning record (with the parameters found
at the edge of their grid), seed, reference and notes. See docs/results.md.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from data_scripts import atomic
from data_scripts.manifest import canonical_status, fingerprint

from .errors import UserError
from .names import check_name

#: where ``bench run`` and ``bench score`` write by default: a git-ignored user directory
USER_DIR = Path("runs") / "results"
#: the committed leaderboard's results (written only when a user names it with ``--results``)
LEADERBOARD_DIR = Path("leaderboard") / "results"
VERSIONED = ("osse-bench", "torch", "numpy", "xarray", "zarr", "dask", "scipy", "torch-geometric",
             "pytorch-lightning")


def results_path(results_dir, challenge: str, size: str, name: str) -> Path:
    """``<results_dir>/<challenge>/<size>/<name>.json``; every component must be a safe name."""
    for what, part in (("challenge", challenge), ("size", size), ("result name", name)):
        check_name(part, what)
    return Path(results_dir or USER_DIR) / challenge / size / f"{name}.json"


def hardware(device: str | None = None) -> dict:
    """CPU model, core count, torch threads and GPU name (if used)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "device": device or "cpu", "mkl_cbwr": os.environ.get("MKL_CBWR")}
    if device and device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git(*args) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent.parent)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def code_state() -> dict:
    """The code this process runs: the commit and whether tracked files (``leaderboard/``, which
    runs write into, aside) differed from it.

    Taken once per process, at its first call (``bench run`` calls it before fitting),
    so a commit made while a long run trains does not end up in that run's results."""
    commit = _git("rev-parse", "HEAD") or None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)leaderboard")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def format_value(fmt: str, v: float) -> str:
    """``fmt.format(v)`` without a minus sign on a value that rounds to zero ("-0.000" -> "0.000")."""
    text = fmt.format(v)
    return text.replace("-", "", 1) if text.lstrip().startswith("-") and float(text) == 0.0 else text


def build(challenge, size: str, name: str, kind: str, scores: dict, *, runtime=None, device=None,
          data_dir=None, reference="", notes="", params=None, seed=None, tuning_edge=None) -> dict:
    return {
        "challenge": challenge.name,
        "size": size,
        "method": name,
        "kind": kind,
        "scores": {k: s.to_json() for k, s in scores.items()},
        "columns": challenge.columns(),
        "runtime": runtime or {},
        "hardware": hardware(device),
        "versions": versions(),
        **code_state(),
        "dataset_sha256": fingerprint(data_dir) if data_dir else None,
        "dataset_canonical": canonical_status(data_dir)[0] if data_dir else None,
        "challenge_info": challenge.info(size),
        "params": params or {},
        "tuning_edge": tuning_edge or {},
        "seed": seed,
        "reference": reference,
        "notes": notes,
    }


def dumps(result: dict) -> str:
    return json.dumps(result, indent=1, sort_keys=True, allow_nan=False) + "\n"


def write(path: Path, result: dict, overwrite: bool = False, tx=None) -> Path:
    """Write atomically (into transaction ``tx`` if given); refuse to replace a result unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"a result named {path.stem!r} already exists at {path}; pass --overwrite to replace it")
    text = dumps(result)
    if tx is None:
        atomic.write_text(path, text)
    else:
        tx.stage(path).write_text(text)
    return path
