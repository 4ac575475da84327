"""Write a world's train/val/test datasets to zarr: atomic, dask-parallel, hashed.

Layout: ``<root>/<world>/<size>/{train,val,test}/<store>.zarr`` and
``<root>/<world>/<size>/manifest.json``. Everything is first written to a
hidden temporary directory beside the target and renamed into place only once
every array is written and hashed (``data_scripts.atomic``), so an interrupted
generation never leaves a dataset that looks complete; the temporary
directory of a killed generation is removed by the next one. One generation of
a dataset runs at a time: ``generate`` holds an exclusive lock
(``.<size>.lock`` beside the dataset while it runs, ``fcntl.flock``, released
by the kernel if the process dies), so a second ``bench run`` that needs the same missing
dataset waits for the first and then reads its dataset instead of making it
again.

Parallelism: trajectories of a split are simulated in fixed groups of
``cfg["group"]`` (one batched run each), one dask task per group. Each task
writes its own ``traj`` region of the gridded stores; sparse observation
values are returned and written by the caller. Because groups are fixed by
the config, a serial run, the local threaded scheduler and a
dask.distributed cluster give the same bytes.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import atomic
from . import config as C
from .manifest import MANIFEST, write_manifest

SPLITS = ("train", "val", "test")


class GenerationError(RuntimeError):
    """A user-facing problem (one sentence)."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$BENCH_DATA``, else ``./data``."""
    return Path(root or os.environ.get("BENCH_DATA") or "data")


def dataset_path(world: str, size: str, root=None) -> Path:
    return data_root(root) / world / size


def recipe(world: str):
    """The module that templates and simulates a world's stores."""
    if world in ("l96", "l96x"):
        from . import make_l96 as r
    elif world in ("qg", "qg-jet"):
        from . import make_qg as r
    else:
        raise GenerationError(f"unknown world {world!r}; choose one of {', '.join(C.WORLDS)}")
    return r


def regenerate_states(world: str, size: str, split: str, steps) -> np.ndarray:
    """Coarse states (traj, len(steps), ...) of a split's trajectories at model ``steps`` since the first
    stored snapshot, regenerated with the world's recipe in the dataset's groups: states between the stored
    snapshots (QG only). The same bytes as the stored snapshots only on a CPU that gives the dataset's
    bytes (docs/worlds.md): a caller compares them before use."""
    import torch

    cfg = C.get_config(world, size)
    seeds = C.seeds_for(cfg, split)
    rec = recipe(world)
    if not hasattr(rec, "coarse_states_at"):
        raise GenerationError(f"the {world} recipe cannot regenerate states between snapshots")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as ``_task``: the thread count changes FFT rounding
    try:
        return np.concatenate([rec.coarse_states_at(cfg, seeds[g], steps) for g in _groups(len(seeds), cfg["group"])])
    finally:
        torch.set_num_threads(threads)


def estimate_bytes(templates: dict) -> int:
    """Bytes the stores will take on disk.

    Arrays known when the templates are made (observation positions, times, trajectory
    indices, sigma, coordinates) are compressed now with the stores' codec (zstd), so their
    size is exact: sorted times, repeated indices and constant sigmas shrink by 10-100x.
    Simulated arrays (dask placeholders) are counted uncompressed: chaotic float32 fields
    barely compress (measured: 4 %).
    """
    import numcodecs

    codec = numcodecs.Zstd(level=0)
    total = 0
    for ds in templates.values():
        for v in ds.variables.values():
            data = v.data
            if isinstance(data, np.ndarray) and data.nbytes > 0:
                total += len(codec.encode(np.ascontiguousarray(data)))
            else:
                total += v.nbytes
    return int(total)


def _groups(n: int, size: int) -> list[slice]:
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


@contextmanager
def generation_lock(target: Path):
    """Hold the exclusive lock on generating ``target`` (waits, saying so, while another process holds it).

    The lock file is removed on release, so nothing is left beside the dataset; a waiter
    that wakes on a removed file takes the lock again on the path's current file."""
    lock = target.parent / f".{target.name}.lock"
    said = False
    while True:
        fh = open(lock, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                print(f"another process is generating {target}; waiting for it", file=sys.stderr, flush=True)
                said = True
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if os.fstat(fh.fileno()).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        fh.close()
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        fh.close()


def generate(world: str, size: str = "small", root=None, scheduler: str | None = None,
             force: bool = False, progress: bool = True, splits=None, workers: int | None = None,
             exist_ok: bool = False) -> Path:
    """Generate (world, size) under ``root``; return the dataset path.

    ``scheduler``: None or "threads" (local threads, ``workers`` of them; default one per
    core), "sync" (serial), or a dask.distributed address such as ``tcp://host:8786``. Every
    choice gives the same bytes on the same CPU. ``exist_ok``: return an existing dataset
    (made meanwhile by another process) instead of refusing it.
    """
    try:
        cfg = C.get_config(world, size)
    except KeyError as exc:
        raise GenerationError(exc.args[0]) from None
    if workers is not None and int(workers) < 1:
        raise GenerationError(f"workers must be at least 1, got {workers}")
    target = dataset_path(world, size, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    with generation_lock(target):
        if (target / MANIFEST).exists() and not force:
            if exist_ok:
                return target
            raise GenerationError(f"{target} already exists; pass --force to regenerate it")
        return _generate(world, size, cfg, target, scheduler, progress, splits, workers)


def _generate(world, size, cfg, target: Path, scheduler, progress, splits, workers) -> Path:
    atomic.clean_stale(target.parent, target.name)  # left behind by a killed generation
    rec = recipe(world)
    splits = tuple(s for s in SPLITS if s in cfg["splits"]) if splits is None else tuple(splits)
    seeds = {s: C.seeds_for(cfg, s) for s in splits}
    plans = {s: rec.templates(cfg, s, seeds[s]) for s in splits}
    need = sum(estimate_bytes(p) for p in plans.values())
    free = shutil.disk_usage(target.parent).free
    if need * 1.2 > free:
        raise GenerationError(f"not enough disk space in {target.parent}: about {need / 1e9:.2f} GB needed, "
                              f"{free / 1e9:.2f} GB free")
    try:
        with atomic.transaction() as tx:
            tmp = tx.stage(target, directory=True)
            tasks, total = [], 0
            for split in splits:
                for name, ds in plans[split].items():
                    path = tmp / split / f"{name}.zarr"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    ds.to_zarr(path, compute=False, mode="w", consolidated=False)
                for g in _groups(len(seeds[split]), cfg["group"]):
                    tasks.append((split, g))
                    total += rec.n_progress(cfg, g.stop - g.start)
            bar = _progress_bar(total, f"{world}/{size}", progress)
            import torch

            threads = torch.get_num_threads()
            try:
                results = _run_tasks(rec, cfg, tmp, seeds, tasks, scheduler, bar, workers)
            finally:
                torch.set_num_threads(threads)
            for (split, g), res in zip(tasks, results):
                _write_sparse(tmp / split, plans[split], res, g, seeds[split], cfg)
            bar.close()
            write_manifest(tmp, cfg, seeds)
    except OSError as exc:
        if exc.errno == 28:
            raise GenerationError(f"the disk holding {target.parent} is full; nothing was written") from None
        raise
    return target


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not enabled, smoothing=0.1)


def _run_tasks(rec, cfg, tmp: Path, seeds: dict, tasks: list, scheduler, bar, workers=None) -> list:
    import dask

    lock = threading.Lock()

    def tick(n):
        with lock:
            bar.update(n)

    local = scheduler in (None, "threads", "sync")
    if local:
        if scheduler == "sync":
            workers = 1
        elif workers is None:
            workers = max(1, min(len(tasks), os.cpu_count() or 1))
        delayed = [dask.delayed(_task)(rec, cfg, str(tmp), split, seeds[split], g, tick)
                   for split, g in tasks]
        return list(dask.compute(*delayed, scheduler="sync" if workers == 1 else "threads",
                                 num_workers=workers))
    from distributed import Client

    with Client(scheduler) as client:
        futures = [client.submit(_task, rec, cfg, str(tmp), split, seeds[split], g, None, pure=False)
                   for split, g in tasks]
        out = []
        for fut, (split, g) in zip(futures, tasks):
            out.append(fut.result())
            bar.update(rec.n_progress(cfg, g.stop - g.start))
        return out


def _task(rec, cfg: dict, tmp: str, split: str, seeds: list[int], g: slice, tick):
    """Simulate one group, write its gridded region, return its sparse values.

    One torch thread per task: parallelism comes from running groups side by side,
    and a fixed thread count keeps FFT rounding (hence the bytes) independent of
    the scheduler and of the number of workers.
    """
    import torch
    import xarray as xr

    torch.set_num_threads(1)
    res = rec.simulate(cfg, split, seeds[g], progress=tick)
    sparse = {}
    for store, arrays in res.items():
        path = Path(tmp) / split / f"{store}.zarr"
        probe = xr.open_zarr(path, consolidated=False)
        gridded = {k: v for k, v in arrays.items() if "traj" in probe[k].dims}
        if gridded:
            ds = xr.Dataset({k: (probe[k].dims, v.astype(probe[k].dtype)) for k, v in gridded.items()})
            ds.to_zarr(path, region={"traj": g}, consolidated=False)
        rest = {k: v for k, v in arrays.items() if k not in gridded}
        if rest:
            sparse[store] = rest
    return sparse


def _write_sparse(split_dir: Path, plan: dict, res: dict, g: slice, seeds: list[int], cfg: dict) -> None:
    """Write a group's rows of the sparse (``obs``-dimension) stores."""
    import xarray as xr

    for store, arrays in res.items():
        traj = plan[store]["traj"].values
        rows = np.flatnonzero((traj >= g.start) & (traj < g.stop))
        if rows.size == 0:
            continue
        region = slice(int(rows[0]), int(rows[-1]) + 1)
        ds = xr.Dataset({k: ("obs", v.astype(plan[store][k].dtype)) for k, v in arrays.items()})
        ds.to_zarr(split_dir / f"{store}.zarr", region={"obs": region}, consolidated=False)
