"""The README's "Train your own model" example: it trains on train/val only, writes a valid
submission, and ``bench score`` scores it above the background."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from data_scripts.generate import generate

    path = tmp_path_factory.mktemp("data")
    generate("l96", "tiny", root=path, progress=False)
    return path


def test_own_model_submission_scores_above_the_background(root, tmp_path, monkeypatch):
    import train_your_own

    from bench.cli import main

    torch.set_num_threads(1)
    monkeypatch.setenv("BENCH_DATA", str(root))
    out = tmp_path / "sub.zarr"
    assert train_your_own.main(["--size", "tiny", "--out", str(out), "--epochs", "12"]) == 0
    rc = main(["score", "l96-da", str(out), "--size", "tiny", "--name", "my-cnn",
               "--results", str(tmp_path / "results")])
    assert rc == 0
    res = json.loads((tmp_path / "results" / "l96-da" / "tiny" / "my-cnn.json").read_text())
    gain = res["scores"]["gain"]["value"]
    assert gain > 0.05, gain
