"""``ae-oi``: the U-Net that corrects the OI map, on tiny data: its starting point is OI, it trains on OI's
maps of the train split, and its prediction validates."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import registry
from bench.validate import check

SIZE = "tiny"
OI_PARAMS = {"oi_Lx": "60", "oi_Lt": "10", "oi_noise": "0.03"}
QUICK = {"max_epochs": "3", "max_samples": "96", "batch_size": "16", "patience": "3", **OI_PARAMS}


@pytest.fixture(scope="module")
def root(tiny_data):
    return tiny_data("qg")


pytestmark = pytest.mark.usefixtures("one_thread_in_tmp")


def _fit(root, **params):
    cls = registry.method_class("ae-oi")
    ch = registry.get_challenge("qg-map")
    m = cls(config=cls.make_config({**QUICK, **params}), seed=0, device="cpu", progress=False)
    m.context = {"workdir": Path("runs") / "qg-map" / SIZE / "ae-oi", "data_fingerprint": "test",
                 "challenge": "qg-map", "size": SIZE}
    m.fit(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root))
    return ch, m


def test_a_zero_correction_returns_the_first_guess_and_the_target_is_what_it_misses(root):
    ch, m = _fit(root, max_epochs="1", max_samples="16")
    split = ch.split(SIZE, "val", root)
    samples = split.training_pairs().isel(sample=slice(0, 4)).load()
    w = split.problem(samples).within(m.config.half_window)
    fg = torch.randn((4, *w.geometry.shape), generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.01
    w = replace(w, first_guess=fg)
    learner = m.learner
    learner.forward_problem = lambda p: torch.zeros((p.B, 1, *p.geometry.shape))
    torch.testing.assert_close(learner.field(w), fg, rtol=0, atol=0)
    truth = torch.as_tensor(samples["target"].values)
    torch.testing.assert_close(learner.target(w, truth)[:, 0], (truth - fg) / learner.norm.state_std[0])


def test_it_trains_on_oi_maps_of_the_train_split_and_its_prediction_validates(root):
    ch, m = _fit(root)
    curve = [v for _, v in m.record["train_curve"]]
    assert len(curve) == 3 and curve[-1] < curve[0], curve
    d = m.describe()
    fg = d["first_guess"]
    assert fg["method"] == "oi" and fg["params"] == {"Lx": 60.0, "Lt": 10.0, "noise": 0.03}
    assert fg["tuning"]["mode"] == "fixed" and set(fg["seconds"]) == {"train", "val"}
    pred = check(ch.run(m, SIZE, root), ch.template(SIZE, root), optional_dims=ch.optional_dims)
    assert np.isfinite(pred["ssh"].values).all() and np.isfinite(ch.score(pred, SIZE, root)["mu"].value)
    assert "test" in m.describe()["first_guess"]["seconds"]


def test_oi_settings_are_all_or_none(root):
    from baselines.base import SettingError

    with pytest.raises(SettingError, match="give all of oi_Lx"):
        _fit(root, oi_Lx="none", oi_noise="none")


def test_partial_oi_settings_are_one_sentence_before_any_data(tmp_path):
    from bench.cli import main

    code = main(["run", "qg-map", "ae-oi", "--param", "oi_Lx=45", "--root", str(tmp_path / "data"), "--quiet"])
    assert code == 2 and not (tmp_path / "data").exists()
