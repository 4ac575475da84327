"""End to end through the CLI on tiny L96 data: run, template, score, leaderboard, plot."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from bench.cli import main


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    res = tmp_path_factory.mktemp("results")
    assert main(["data", "generate", "l96", "--size", "tiny", "--root", str(root), "--quiet"]) == 0
    return root, res


def _args(env, *extra):
    root, res = env
    return [*extra, "--size", "tiny", "--root", str(root), "--results", str(res)]


def test_run_writes_results_with_design_fields(env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["run", *_args(env, "l96-cycle", "3dvar"), "--quiet"]) == 0
    out = json.loads((env[1] / "l96-cycle" / "tiny" / "3dvar.json").read_text())
    for key in ("challenge", "size", "method", "scores", "runtime", "hardware", "versions", "git_commit",
                "git_dirty", "dataset_sha256", "reference", "notes"):
        assert key in out
    rmse = out["scores"]["rmse"]
    assert 0.2 < rmse["value"] < 0.7 and rmse["ci95"][0] <= rmse["value"] <= rmse["ci95"][1]
    assert main(["plot", "l96-cycle", "3dvar", "--size", "tiny", "--root", str(env[0])]) == 0
    assert list((tmp_path / "runs" / "l96-cycle" / "tiny" / "3dvar").glob("*.png"))


def test_results_record_the_commit_the_run_started_from(env, monkeypatch, tmp_path):
    """A commit made while a method trains must not be recorded as the code that ran."""
    from bench import registry
    from bench import results as R

    monkeypatch.chdir(tmp_path)
    R.code_state.cache_clear()
    head = {"now": "a" * 40}
    monkeypatch.setattr(R, "_git", lambda *a: head["now"] if a[0] == "rev-parse" else "")
    real = registry.get_method

    def committing_meanwhile(*a, **k):
        method = real(*a, **k)
        fit = method.fit

        def fit_then_commit(train, val):
            fit(train, val)
            head["now"] = "b" * 40
        method.fit = fit_then_commit
        return method

    monkeypatch.setattr("bench.runner.get_method", committing_meanwhile)
    try:
        assert main(["run", *_args(env, "l96-da", "background"), "--name", "started", "--quiet"]) == 0
    finally:
        R.code_state.cache_clear()
    out = json.loads((env[1] / "l96-da" / "tiny" / "started.json").read_text())
    assert head["now"] == "b" * 40 and out["git_commit"] == "a" * 40 and out["git_dirty"] is False


def test_template_score_roundtrip_and_errors(env, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root, res = env
    sub = tmp_path / "sub.zarr"
    assert main(["template", "l96-da", str(sub), "--size", "tiny", "--root", str(root)]) == 0
    tmpl = xr.open_zarr(sub, consolidated=False).load()
    assert all(np.isnan(v.values).all() for v in tmpl.data_vars.values())
    # the template itself is not a valid submission (NaN): exit 2, nothing written
    assert main(["score", *_args(env, "l96-da", str(sub)), "--name", "nan-sub"]) == 2
    assert "NaN" in capsys.readouterr().err
    assert not (res / "l96-da" / "tiny" / "nan-sub.json").exists()
    # the truth submitted scores perfectly
    from bench.registry import get_challenge

    truth = get_challenge("l96-da").truth("tiny", root)
    good = tmp_path / "truth.nc"
    truth.to_netcdf(good)
    assert main(["score", *_args(env, "l96-da", str(good)), "--name", "oracle"]) == 0
    scored = json.loads((res / "l96-da" / "tiny" / "oracle.json").read_text())
    assert scored["kind"] == "submission" and scored["scores"]["rmse"]["value"] == pytest.approx(0.0, abs=1e-6)
    # the same name again needs --overwrite
    assert main(["score", *_args(env, "l96-da", str(good)), "--name", "oracle"]) == 2
    assert main(["score", *_args(env, "l96-da", str(good)), "--name", "oracle", "--overwrite"]) == 0


def test_unknown_names_are_one_sentence(env, capsys):
    assert main(["run", *_args(env, "no-such-challenge", "3dvar")]) == 2
    assert main(["run", *_args(env, "l96-cycle", "no-such-method")]) == 2
    err = capsys.readouterr().err
    assert "unknown challenge" in err and "unknown method" in err and "Traceback" not in err


def test_a_bad_method_or_setting_is_refused_before_any_data_is_generated(tmp_path, capsys):
    root = tmp_path / "data"
    base = ["--size", "tiny", "--root", str(root), "--results", str(tmp_path / "res"), "--quiet"]
    assert main(["run", "qg-map", "no-such-method", *base]) == 2
    assert main(["run", "qg-map", "ae", "--param", "shift=maybe", *base]) == 2
    err = capsys.readouterr().err
    assert "unknown method" in err and "not a valid bool" in err and "Traceback" not in err
    assert not root.exists() or not any(root.iterdir())


def test_leaderboard_from_results(env, tmp_path):
    root, res = env
    assert main(["leaderboard", "--results", str(res), "--out", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "l96" in text
    assert main(["leaderboard", "--results", str(res), "--out", str(tmp_path), "--check"]) == 0
