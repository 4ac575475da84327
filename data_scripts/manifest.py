"""Dataset manifests: generating config, seeds, package versions and a sha256 per array.

The hash is taken over each array's decoded values (C order, native dtype),
so it does not depend on the zarr codec or chunking: generating the same
config twice on CPU must give the same hashes, and ``verify`` recomputes them
to detect a corrupted or truncated store.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
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
    manifest = {"config": config, "seeds": seeds, "versions": package_versions(), "arrays": arrays}
    if extra:
        manifest.update(extra)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def read_manifest(root: Path) -> dict:
    """The manifest of a dataset directory (raises FileNotFoundError if absent)."""
    return json.loads((Path(root) / MANIFEST).read_text())


def verify(root: Path) -> list[str]:
    """Recompute every hash; return one sentence per problem (empty list = intact)."""
    root = Path(root)
    manifest = read_manifest(root)
    problems = []
    for rel, arrays in manifest["arrays"].items():
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
