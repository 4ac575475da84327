"""Names, paths and writes: nothing escapes the directory the user named, nothing is half-written."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.cli import main
from bench.names import is_safe
from data_scripts import atomic
from data_scripts.generate import estimate_bytes, generate


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    generate("l96", "tiny", root=root, progress=False)
    from bench.registry import get_challenge

    sub = tmp_path_factory.mktemp("sub") / "truth.nc"
    get_challenge("l96-da").truth("tiny", root).to_netcdf(sub)
    return root, sub


BAD_NAMES = ["../../x", "/abs/path", "a/b", "", ".", "..", "a|b", "a\nb", "x" * 300, "-lead", ".hidden", "a b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_are_refused_and_nothing_is_written(name, env, tmp_path, monkeypatch, capsys):
    root, sub = env
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    victim = tmp_path / "x.json"
    victim.write_text("keep me")
    res = work / "results"
    rc = main(["score", "l96-da", str(sub), f"--name={name}", "--size", "tiny", "--root", str(root),
               "--results", str(res)])
    err = capsys.readouterr().err
    assert rc == 2 and "not allowed" in err and "Traceback" not in err and err.count("\n") == 1
    assert victim.read_text() == "keep me"
    assert not res.exists() and not (work / "runs").exists()


def test_safe_names():
    for ok in ("oi", "3dvar", "my-method_v2.1+ens", "A" * 64):
        assert is_safe(ok)
    assert not is_safe("A" * 65)


def test_score_writes_both_outputs_or_neither(env, tmp_path, monkeypatch):
    root, sub = env
    monkeypatch.chdir(tmp_path)
    import xarray as xr

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_zarr", broken)
    assert main(["score", "l96-da", str(sub), "--name", "good", "--size", "tiny", "--root", str(root),
                 "--results", str(tmp_path / "res")]) == 2
    assert not (tmp_path / "res").exists() and not (tmp_path / "runs").exists()
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    # a retry works (nothing stale blocks it)
    assert main(["score", "l96-da", str(sub), "--name", "good", "--size", "tiny", "--root", str(root),
                 "--results", str(tmp_path / "res")]) == 0
    assert (tmp_path / "res" / "l96-da" / "tiny" / "good.json").exists()
    assert (tmp_path / "runs" / "l96-da" / "tiny" / "good" / "prediction.zarr").exists()
    # no temporary names left anywhere
    assert not [p for p in tmp_path.rglob(".*tmp-*")]


def test_transaction_rolls_back_the_first_output_when_the_second_fails(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b"
    a.write_text("old a")
    with pytest.raises(FileNotFoundError):
        with atomic.transaction() as tx:
            tx.stage(a).write_text("new a")
            tx.stage(b, directory=True)
            import shutil

            shutil.rmtree(tx._staged[1][0])  # the second output vanishes before the commit
    assert a.read_text() == "old a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_stale_temporary_directories_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / ".tiny.tmp-dead0001"
    stale.mkdir()
    (stale / atomic.OWNER).write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead)}))
    live = tmp_path / ".tiny.tmp-live0001"
    atomic.mark_owner(live)
    assert atomic.clean_stale(tmp_path, "tiny") == [stale]
    assert live.exists() and not stale.exists()


def test_the_space_estimate_is_close_to_the_real_size(env):
    root, _ = env
    from data_scripts import config as C
    from data_scripts import make_l96

    cfg = C.get_config("l96", "tiny")
    est = sum(estimate_bytes(make_l96.templates(cfg, s, C.seeds_for(cfg, s))) for s in ("train", "val", "test"))
    real = sum(p.stat().st_size for p in (root / "l96" / "tiny").rglob("*") if p.is_file()
               and p.suffix != ".json" and p.name != "zarr.json")
    assert 0.7 * real < est < 1.5 * real


@pytest.mark.parametrize("args, text", [
    (["leaderboard", "--results", "no-such-dir"], "does not exist"),
    (["run", "l96-cycle", "3dvar", "--size", "tiny", "--device", "gpu"], "unknown device"),
    (["run", "l96-cycle", "3dvar", "--size", "tiny", "--threads", "0"], "--threads"),
])
def test_bad_options_are_one_sentence(args, text, capsys, tmp_path):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err and err.count("\n") == 1


def test_a_missing_checkpoint_is_one_sentence(env, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "l96-da", "ae", "--size", "tiny", "--root", str(env[0]), "--results", str(tmp_path / "res"),
            "--param", "from_checkpoint=no/such/model.pt", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no/such/model.pt does not exist" in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("method", ["ae", "diffda"])
def test_a_mapping_window_longer_than_the_pairs_is_one_sentence_before_training(method, tiny_data, capsys, tmp_path,
                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["run", "qg-map", method, "--size", "tiny", "--root", str(tiny_data("qg")), "--results",
            str(tmp_path / "res"), "--param", "half_window=20", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "half_window=20 days is longer than the +-15 days" in err and "Traceback" not in err
    assert err.count("\n") == 1 and not (tmp_path / "res").exists() and not (tmp_path / "runs").exists()


def test_a_mapping_window_longer_than_the_pairs_is_refused_before_any_data_is_generated(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "no-data-yet"
    args = ["run", "qg-map", "diffda", "--size", "tiny", "--root", str(empty), "--param", "half_window=20", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "half_window=20 days is longer than the +-15 days" in err and err.count("\n") == 1
    assert not empty.exists() and not (tmp_path / "runs").exists()


def test_cuda_without_cuda_is_one_sentence(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["run", "l96-cycle", "3dvar", "--size", "tiny", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_empty_results_directory_is_an_error(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert main(["leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path)]) == 2
    assert "holds no results" in capsys.readouterr().err
    assert not (tmp_path / "README.md").exists()


def _chunks(store):
    return sorted(p for p in store.rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zattrs"))


@pytest.mark.parametrize("damage", ["bit flip", "garbage chunk"])
def test_damaged_test_data_is_refused_naming_the_array(damage, env, tmp_path, monkeypatch, capsys):
    import shutil

    root, _ = env
    copy = tmp_path / "data"
    shutil.copytree(root, copy)
    chunk = _chunks(copy / "l96" / "tiny" / "test" / "fields.zarr" / "x")[0]
    raw = bytearray(chunk.read_bytes())
    if damage == "bit flip":
        raw[len(raw) // 2] ^= 0x01
    else:
        raw = bytearray(b"\xde\xad" * 20)
    chunk.write_bytes(bytes(raw))
    monkeypatch.chdir(tmp_path)
    rc = main(["run", "l96-da", "background", "--size", "tiny", "--root", str(copy), "--results",
               str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "damaged" in err and "'x'" in err and "bench data verify" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "res").exists()
