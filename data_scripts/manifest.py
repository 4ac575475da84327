"""Dataset manifests: generating config, seeds, package versions and a sha256 per array.

The hash is taken over each array's decoded values (C order, native dtype),
so it does not depend on the zarr codec or chunking: generating the same
config twice on CPU must give the same hashes, and ``verify`` recomputes them
to detect a corrupted or truncated store.

A dataset's fingerprint is the sha256 of its manifest's per-array hashes. The
canonical fingerprint of every (world, size) generated on CPU is committed in
``data_scripts/fingerprints.json`` with the CPU model and torch version it was
generated with; ``canonical_status`` says whether a local dataset is that one.
Results record the fingerprint and whether it was canonical, so scores
computed against another truth are never mistaken for comparable ones.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
FINGERPRINTS = Path(__file__).with_name("fingerprints.json")
PACKAGES = ("torch", "numpy", "xarray", "zarr", "dask", "scipy")


def array_sha256(values: np.ndarray) -> str:
    """sha256 of an array's bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


def package_versions() -> dict:
    """Versions of the packages that decide a dataset's bytes."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def store_hashes(store: Path) -> dict:
    """{array name: {sha256, dtype, shape}} for every array (data and coords) of a zarr store."""
    import zarr

    group = zarr.open_group(str(store), mode="r")
    out = {}
    for name, arr in sorted(group.arrays()):
        values = arr[...]
        out[name] = {"sha256": array_sha256(values), "dtype": str(values.dtype), "shape": list(values.shape)}
    return out


def dataset_stores(root: Path) -> list[Path]:
    """All zarr stores under a dataset directory, sorted, as paths relative to it."""
    return sorted(p.relative_to(root) for p in root.rglob("*.zarr") if p.is_dir())


def write_manifest(root: Path, config: dict, seeds: dict, extra: dict | None = None) -> dict:
    """Hash every store under ``root`` and write ``manifest.json`` there."""
    arrays = {str(rel): store_hashes(root / rel) for rel in dataset_stores(root)}
    from . import numerics

    manifest = {"config": config, "seeds": seeds, "versions": package_versions(), "numerics": numerics(),
                "arrays": arrays}
    if extra:
        manifest.update(extra)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def read_manifest(root: Path) -> dict:
    """The manifest of a dataset directory (raises FileNotFoundError if absent)."""
    return json.loads((Path(root) / MANIFEST).read_text())


def fingerprint(root) -> str | None:
    """sha256 over the manifest's per-array hashes: one fingerprint of the dataset (None without manifest)."""
    try:
        manifest = read_manifest(root)
    except (OSError, ValueError):
        return None
    return hashlib.sha256(json.dumps(manifest["arrays"], sort_keys=True).encode()).hexdigest()


def canonical_fingerprints() -> dict:
    """{world: {size: {"sha256", "cpu", "torch", ...}}} as committed in the repository."""
    try:
        return json.loads(FINGERPRINTS.read_text())
    except (OSError, ValueError):
        return {}


def canonical_status(root) -> tuple[bool | None, str]:
    """(is canonical, one sentence) for the dataset at ``root`` (``<data root>/<world>/<size>``).

    None when no canonical fingerprint is committed for that (world, size).
    """
    root = Path(root)
    try:
        cfg = read_manifest(root)["config"]
    except (OSError, ValueError, KeyError):
        return None, f"{root} has no readable manifest"
    world, size = cfg.get("world"), cfg.get("size")
    ref = canonical_fingerprints().get(world, {}).get(size)
    fp = fingerprint(root)
    if ref is None:
        return None, f"no canonical fingerprint is committed for {world}/{size} (this one: {fp[:12]}...)"
    if fp == ref["sha256"]:
        return True, f"it is the canonical {world}/{size} dataset (fingerprint {fp[:12]}...)"
    return False, (f"it is NOT the canonical {world}/{size} dataset: fingerprint {fp[:12]}... against "
                   f"{ref['sha256'][:12]}... (generated on {ref.get('cpu', '?')} with torch {ref.get('torch', '?')}); "
                   "scores on it are not comparable with the leaderboard's")


def _cpu_model() -> str:
    """The CPU's model name (FFT rounding, hence a QG dataset's bytes, may depend on it)."""
    try:
        return next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def record_canonical(root) -> str:
    """Write the fingerprint of the dataset at ``root`` into ``fingerprints.json`` (a maintainer's step)."""
    import torch

    cfg = read_manifest(root)["config"]
    table = canonical_fingerprints()
    fp = fingerprint(root)
    from . import numerics

    table.setdefault(cfg["world"], {})[cfg["size"]] = {"sha256": fp, "cpu": _cpu_model(), "torch": torch.__version__,
                                                       **{k.lower(): v for k, v in numerics().items()}}
    FINGERPRINTS.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return fp


def verify(root: Path, splits=None) -> list[str]:
    """Recompute every hash (of the stores under ``splits`` only, if given); one sentence per problem."""
    root = Path(root)
    manifest = read_manifest(root)
    problems = []
    for rel, arrays in manifest["arrays"].items():
        if splits is not None and Path(rel).parts[0] not in splits:
            continue
        store = root / rel
        if not store.exists():
            problems.append(f"store {rel} is missing")
            continue
        for name, want in arrays.items():
            try:
                got = store_hashes_one(store, name)
            except Exception as exc:  # a damaged chunk or metadata file: name the array
                problems.append(f"array {name!r} in {rel} cannot be read ({type(exc).__name__}: {exc})")
                continue
            if got != want["sha256"]:
                problems.append(f"array {name!r} in {rel} does not match its sha256 in the manifest")
    return problems


def store_hashes_one(store: Path, name: str) -> str:
    """sha256 of one array of a zarr store."""
    import zarr

    return array_sha256(zarr.open_array(str(store), path=name, mode="r")[...])
