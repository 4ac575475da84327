"""``cnn-online`` on tiny l96x data: the online phase trains through the solver, and its offline term sees
the true forcing of the very states the unrolls start from."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import registry

SIZE = "tiny"
QUICK = {"offline_epochs": "2", "max_epochs": "3", "max_starts": "32", "batch_size": "8", "unroll_max": "2",
         "grow_every": "100", "widths": "16,16", "max_samples": "256"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from data_scripts.generate import dataset_path, generate
    from data_scripts.manifest import MANIFEST

    env = os.environ.get("BENCH_DATA")
    base = Path(env) if env else tmp_path_factory.mktemp("data")
    if not (dataset_path("l96x", SIZE, base) / MANIFEST).exists():
        generate("l96x", SIZE, root=base, progress=False)
    return base


@pytest.fixture(autouse=True)
def _one_thread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _fit(root, **params):
    cls = registry.method_class("cnn-online")
    ch = registry.get_challenge("l96x-closure")
    m = cls(config=cls.make_config({**QUICK, **params}), seed=0, device="cpu", progress=False)
    m.context = {"workdir": Path("runs"), "data_fingerprint": "test", "challenge": ch.name, "size": SIZE}
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    m.fit(train, val)
    return m, train, val


@pytest.mark.parametrize("offline_weight", ["0", "0.5"])
def test_online_training_runs_through_the_solver_and_records_both_phases(root, offline_weight):
    m, train, _ = _fit(root, offline_weight=offline_weight)
    d = m.describe()
    off, on = d["offline_training"], d["online_training"]
    assert off["epochs"] == 2 and on["epochs"] >= 1
    assert np.isfinite(on["best_val_loss"]) and on["best_val_loss"] > 0
    assert on["train_curve"][-1][1] < on["train_curve"][0][1]  # at a fixed unroll the trajectory loss falls
    x = torch.as_tensor(train.states()[:4])
    S = m.closure(train.model)(x)
    assert S.shape == x.shape and torch.isfinite(S).all()


def test_the_offline_term_gets_the_true_forcing_of_each_start_state(root):
    from baselines.learned.online import TrajectoryDataModule

    ch = registry.get_challenge("l96x-closure")
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    dm = TrajectoryDataModule(train, val, unroll_max=2, batch_size=8, seed=0, max_starts=16, with_forcing=True)
    x0, truth, S0 = dm.batch(torch.arange(8), "cpu", True, 2)
    states, forcings = train.states(), train.forcings()
    for b in range(8):
        row = np.flatnonzero((states == x0[b].numpy()).all(1))
        assert row.size >= 1 and np.array_equal(forcings[row[0]], S0[b].numpy())
        assert np.array_equal(states[row[0] + 1], truth[b, 0].numpy())  # the next snapshot of the same run
    assert TrajectoryDataModule(train, val, 2, 8, 0, 16).batch(torch.arange(8), "cpu", True, 2)[2] is None
