"""Datasets on disk: determinism, serial == dask, atomic writes, manifest verification, CLI errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from bench.cli import main
from data_scripts import config as C
from data_scripts.generate import GenerationError, generate
from data_scripts.manifest import verify


@pytest.fixture(scope="module")
def l96_tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return generate("l96", "tiny", root=root, progress=False)


def _hashes(path):
    return json.loads((path / "manifest.json").read_text())["arrays"]


def test_same_config_gives_identical_bytes(l96_tiny, tmp_path):
    again = generate("l96", "tiny", root=tmp_path, progress=False, scheduler="sync")
    assert _hashes(again) == _hashes(l96_tiny)


def test_splits_come_from_distinct_seeds(l96_tiny):
    man = json.loads((l96_tiny / "manifest.json").read_text())
    seeds = [s for split in man["seeds"].values() for s in split]
    assert len(seeds) == len(set(seeds))
    train = xr.open_zarr(l96_tiny / "train" / "fields.zarr", consolidated=False).x.values
    test = xr.open_zarr(l96_tiny / "test" / "fields.zarr", consolidated=False).x.values
    assert not np.isin(test[:, 0], train.reshape(-1, train.shape[-1])).all(axis=-1).any()


def test_layout_units_and_obs_noise(l96_tiny):
    ds = xr.open_zarr(l96_tiny / "test" / "fields.zarr", consolidated=False)
    obs = xr.open_zarr(l96_tiny / "test" / "obs.zarr", consolidated=False)
    assert ds.time.attrs["units"] == "days"
    assert float(ds.time[1] - ds.time[0]) == pytest.approx(0.25)  # 0.05 MTU = 6 h
    noise = (obs.y_obs - ds.x).values
    assert noise.std() == pytest.approx(float(obs.sigma), rel=0.05)
    assert abs(noise.mean()) < 0.05


def test_verify_names_a_corrupted_array(l96_tiny, tmp_path):
    copy = tmp_path / "l96" / "tiny"
    shutil.copytree(l96_tiny, copy)
    assert verify(copy) == []
    chunk_dir = copy / "val" / "fields.zarr" / "x"
    chunk = sorted(p for p in chunk_dir.rglob("*") if p.is_file() and p.name != "zarr.json")[0]
    chunk.write_bytes(b"\x00" * 16)
    problems = verify(copy)
    assert problems and "'x'" in problems[0] and "val/fields.zarr" in problems[0]
    assert main(["data", "verify", "l96", "--size", "tiny", "--root", str(tmp_path)]) == 1


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    from data_scripts import make_l96

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(make_l96, "simulate", boom)
    with pytest.raises(KeyboardInterrupt):
        generate("l96", "tiny", root=tmp_path, progress=False)
    assert not (tmp_path / "l96" / "tiny").exists()
    assert list((tmp_path / "l96").iterdir()) == []


def test_existing_dataset_needs_force(l96_tiny):
    with pytest.raises(GenerationError, match="--force"):
        generate("l96", "tiny", root=l96_tiny.parent.parent, progress=False)


def test_not_enough_disk_is_one_sentence(tmp_path, monkeypatch, capsys):
    import shutil as sh

    monkeypatch.setattr(sh, "disk_usage", lambda p: sh._ntuple_diskusage(10, 10, 0))
    assert main(["data", "generate", "l96", "--size", "tiny", "--root", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not enough disk space" in err and "Traceback" not in err
    assert not (tmp_path / "l96" / "tiny").exists()


@pytest.mark.parametrize("argv, text", [
    (["data", "generate", "mars"], "unknown world"),
    (["data", "generate", "l96", "--size", "huge"], "unknown size"),
    (["data", "verify", "l96", "--size", "tiny", "--root", "/nonexistent"], "no dataset"),
])
def test_cli_errors_are_one_sentence(argv, text, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err and err.count("\n") == 1


def test_list_names_worlds_and_sizes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for w in C.WORLDS:
        assert w in out
    assert "tiny" in out


def test_dask_distributed_gives_same_bytes(l96_tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        path = generate("l96", "tiny", root=tmp_path, progress=False, scheduler=cl.scheduler_address)
    assert _hashes(path) == _hashes(l96_tiny)


def test_qg_tiny_is_bit_reproducible_serial_vs_threads(tmp_path, monkeypatch):
    """Generating qg tiny twice (serial, then dask threads) gives identical sha256s of every array.

    The spin-up is shortened (bytes, not equilibrium, are under test) to keep CI fast.
    """
    monkeypatch.setitem(C._QG, "tiny", dict(C._QG["tiny"], spinup_days=20, n_days=4))
    a = generate("qg", "tiny", root=tmp_path / "a", progress=False, scheduler="sync")
    b = generate("qg", "tiny", root=tmp_path / "b", progress=False, scheduler="threads")
    assert _hashes(a) == _hashes(b)
    ds = xr.open_zarr(a / "test" / "fields.zarr", consolidated=False)
    assert ds.x.attrs["units"] == "km" and ds.time.attrs["units"] == "days"
    assert set(ds.data_vars) == {"q", "psi", "ssh", "S"}
    obs = xr.open_zarr(a / "test" / "obs_nadir4.zarr", consolidated=False)
    assert {"time", "x", "y", "traj", "value", "sigma"} <= set(obs.variables)
    assert float(obs.x.max()) < 1000.0 and float(obs.x.min()) >= 0.0
    assert verify(a) == []
