"""Learned methods (``ae``, ``gnn``) and their Lightning stack, on tiny data: what can fail.

The loss falls; predictions validate; a matching checkpoint is reused; DDP on
two CPU processes trains the same model; the graph has the stated edges; the
same GNN weights run on another grid size; training never reads the test split.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import registry
from bench.cli import main
from bench.validate import check

SIZE = "tiny"
QUICK = {"max_epochs": "3", "max_samples": "96", "batch_size": "16", "patience": "3"}


@pytest.fixture(scope="module")
def root(tiny_data):
    return tiny_data("l96", "qg")


pytestmark = pytest.mark.usefixtures("one_thread_in_tmp")


def _fit(challenge, method_name, root, **params):
    cls = registry.method_class(method_name)
    ch = registry.get_challenge(challenge)
    m = cls(config=cls.make_config({**QUICK, **params}), seed=0, device="cpu", progress=False)
    m.context = {"workdir": Path("runs") / challenge / SIZE / method_name, "data_fingerprint": "test",
                 "challenge": challenge, "size": SIZE}
    m.fit(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root))
    return ch, m


@pytest.mark.parametrize("challenge, method", [("l96-da", "ae"), ("qg-da", "gnn"), ("qg-map", "ae")])
def test_training_lowers_the_loss_and_the_prediction_validates(root, challenge, method):
    # the PV loss alone, unaugmented: the SSH term and the mirrored samples make the loss fall more slowly
    # in 3 epochs at tiny (the SSH term has its own test below, with both)
    ch, m = _fit(challenge, method, root, **({"field_loss": "0", "augment": "false"} if method == "gnn" else {}))
    curve = [v for _, v in m.record["train_curve"]]
    assert len(curve) == 3 and curve[-1] < 0.97 * curve[0], curve
    assert len(m.record["val_curve"]) == 3
    assert m.record["parameters"] > 1000 and m.record["train_seconds"] > 0 and not m.record["reused"]
    assert m.record["hardware"]["accelerator"] == "cpu" and m.record["precision"] == "32-true"
    pred = ch.run(m, SIZE, root)
    pred = check(pred, ch.template(SIZE, root), optional_dims=ch.optional_dims, optional_vars=ch.optional_vars)
    scores = ch.score(pred, SIZE, root)
    assert np.isfinite(scores[ch.metrics[0].key].value)


def test_a_matching_checkpoint_is_reused_and_retrain_trains_again(root):
    _, first = _fit("l96-da", "ae", root, max_epochs="1")
    _, second = _fit("l96-da", "ae", root, max_epochs="1")
    assert second.record["reused"] and second.record["checkpoint_sha256"] == first.record["checkpoint_sha256"]
    for a, b in zip(first.learner.net.parameters(), second.learner.net.parameters()):
        assert torch.equal(a, b)
    _, third = _fit("l96-da", "ae", root, max_epochs="1", retrain="true")
    assert not third.record["reused"]
    _, other = _fit("l96-da", "ae", root, max_epochs="1", lr="0.002")
    assert not other.record["reused"]  # another configuration: another key


def test_density_sweep_draws_a_density_per_training_sample(root):
    from baselines.learned.data import PairsDataModule

    ch = registry.get_challenge("qg-da")
    dm = PairsDataModule(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root), batch_size=32, max_samples=64)
    assert dm.densities == [13, 51, 256]
    problem, _ = dm.batch(torch.arange(32), "cpu", train=True)
    counts = set(problem.obs.valid.sum(1).tolist())
    assert counts <= {13, 51, 256} and len(counts) > 1
    problem, _ = dm.batch(torch.arange(6), "cpu", train=False)
    assert problem.obs.valid.sum(1).tolist() == [13, 51, 256, 13, 51, 256]  # the same every epoch


def test_the_density_sweep_and_its_forecast_challenge_share_training_pairs(root):
    keys = {name: registry.get_challenge(name).split(SIZE, "train", root).pairs_key()
            for name in ("qg-da", "qg-da-sparse", "qg-da-dense", "qg-fc48", "qg-cycle", "qg-cycle-fixed", "qg-da-48h")}
    assert keys["qg-da"] == keys["qg-da-sparse"] == keys["qg-da-dense"] == keys["qg-fc48"] == keys["qg-cycle"]
    assert keys["qg-cycle-fixed"] != keys["qg-da"] and keys["qg-da-48h"] != keys["qg-da"]


def test_ddp_on_two_cpu_processes_trains_the_same_model(root):
    _, one = _fit("l96-da", "ae", root, max_epochs="2", max_samples="64", batch_size="8")
    _, two = _fit("l96-da", "ae", root, max_epochs="2", max_samples="64", batch_size="4", devices="2")
    assert two.record["strategy"] == "ddp_spawn" and two.record["hardware"]["devices"] == 2
    # 2 processes x batch 4 = the global batch of 8: the same optimisation up to reduction order
    assert two.record["best_val_loss"] == pytest.approx(one.record["best_val_loss"], rel=0.05)


def test_the_gnn_graph_has_the_stated_edges():
    from baselines.learned.nets import build_batch

    g = torch.Generator().manual_seed(0)
    pos = [torch.rand(30, 2, generator=g) * 1000, torch.rand(5, 2, generator=g) * 1000]
    feats = [torch.randn(30, 3, generator=g), torch.randn(5, 3, generator=g)]
    b = build_batch(pos, feats, torch.zeros(2, 64, 1), (8, 8), (1000.0, 1000.0), k=8, mesh_neighbours=8, mesh_levels=2)
    assert b.obs_to_grid_edge_index.shape[1] == 64 * 8 + 64 * 5  # every grid node gets min(k, P) observations
    assert b.mesh_edge_index.shape[1] == 2 * (2 * 8 * 64)  # 2 samples x 2 scales x 8 neighbours x 64 nodes
    assert int(b.obs_to_grid_edge_index[1].max()) < 2 * 64 and int(b.obs_to_grid_edge_index[0].max()) < 35


def test_the_same_gnn_weights_run_on_another_grid_size(root):
    from dataclasses import replace

    from challenges.geometry import Geometry

    ch, m = _fit("qg-da", "gnn", root, max_epochs="1", max_samples="32")
    problem = next(iter(ch.cases(SIZE, root)))
    g = problem.geometry
    fine = Geometry(kind=g.kind, shape=(32, 32), length=g.length, axes=g.axes, units=g.units, level_dim=g.level_dim,
                    n_levels=2)
    bg = torch.nn.functional.interpolate(problem.background, size=(32, 32), mode="nearest")
    fine_problem = replace(problem, background=bg, geometry=fine, H=_operator_on(fine, problem.obs.positions))
    out = m.learner.forward_problem(fine_problem)
    assert out.shape == (problem.B, 2, 32, 32) and torch.isfinite(out).all()


def _operator_on(geometry, positions):
    """An observation operator at ``positions`` (B, P, 2) on ``geometry``: the upper level, exactly interpolated."""
    from data_scripts.obs import TrigInterpolator

    from challenges.problems import FieldMap, ObservationOperator

    ny, nx = geometry.shape
    t = torch.zeros(2, ny, nx // 2 + 1, dtype=torch.float64)
    t[0] = 1.0
    return ObservationOperator(FieldMap(geometry, t, "x"),
                               TrigInterpolator(positions[..., 1], positions[..., 0], nx, ny, geometry.length[1],
                                                geometry.length[0]))


def test_training_never_reads_the_test_split(root, monkeypatch):
    import xarray as xr

    from challenges import l96_world

    opened = []
    real = xr.open_zarr

    def spy(path, *a, **k):
        opened.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(xr, "open_zarr", spy)
    l96_world._read.cache_clear()
    for challenge, method in (("l96-cycle", "ae"), ("qg-da", "gnn"), ("qg-map", "ae"), ("qg-map", "ae-oi")):
        opened.clear()
        _fit(challenge, method, root, max_epochs="1", max_samples="32")
        assert opened, "the spy saw no data access"
        assert not [p for p in opened if "/test/" in p.replace("\\", "/")], opened


def test_bench_run_records_the_training(root, tmp_path):
    res = tmp_path / "res"
    args = ["run", "l96-da", "gnn", "--size", SIZE, "--root", str(root), "--results", str(res), "--quiet",
            "--param", "max_epochs=1", "--param", "max_samples=32"]
    assert main(args) == 0
    out = json.loads((res / "l96-da" / SIZE / "gnn.json").read_text())
    rec = out["params"]["tuned"]["training"]
    for key in ("epochs", "best_val_loss", "parameters", "train_seconds", "hardware", "precision", "checkpoint_sha256"):
        assert key in rec
    assert (tmp_path / "runs" / "l96-da" / SIZE / "gnn" / "logs").is_dir()
    assert main(args) == 0  # reused
    again = json.loads((res / "l96-da" / SIZE / "gnn.json").read_text())
    assert again["params"]["tuned"]["training"]["reused"]


def test_the_field_loss_weights_the_large_scales_that_ssh_sees(root):
    """qg-da: PV-increment errors of equal size, one at the largest scale and one at a small scale, cost the
    same in the state loss; the SSH term (``field_loss``) charges the large-scale one far more (SSH is the
    streamfunction, the inverse Laplacian of PV) and adds nothing for a perfect prediction."""
    from baselines.learned.data import PairsDataModule

    _, m = _fit("qg-da", "gnn", root, max_epochs="6", patience="6")  # the default field_loss = 1
    curve = [v for _, v in m.record["train_curve"]]
    assert all(b < a for a, b in zip(curve, curve[1:])) and curve[-1] < 0.985 * curve[0], curve
    ch = registry.get_challenge("qg-da")
    dm = PairsDataModule(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root), batch_size=4, max_samples=8)
    problem, truth = dm.batch(torch.arange(4), "cpu", train=True)
    learner = m.learner
    target = learner.target(problem, truth).to(torch.float32)
    ny, nx = target.shape[-2:]
    x = torch.arange(nx) * 2 * np.pi / nx
    waves = {k: torch.zeros_like(target) for k in (1, 6)}
    for k, w in waves.items():
        w[:, 0] = torch.cos(k * x)[None, None, :] * torch.ones(ny, 1)
    assert float(learner.objective(problem, target, truth)) == pytest.approx(0.0, abs=1e-10)
    learner.field_loss = 0.0
    state = {k: float(learner.objective(problem, target + w, truth)) for k, w in waves.items()}
    assert state[1] == pytest.approx(state[6], rel=1e-5)
    learner.field_loss = 1.0
    field = {k: float(learner.objective(problem, target + w, truth)) - state[k] for k, w in waves.items()}
    assert field[1] > 10 * field[6] > 0


def test_a_mapping_learner_reads_only_its_own_window_of_the_pairs(root):
    from baselines.learned.data import PairsDataModule

    ch = registry.get_challenge("qg-map")
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    wide = PairsDataModule(train, val, batch_size=8, max_samples=16)
    narrow = PairsDataModule(train, val, batch_size=8, max_samples=16, window=3)
    idx = torch.arange(8)
    p_wide, _ = wide.batch(idx, "cpu", train=False)
    p_narrow, _ = narrow.batch(idx, "cpu", train=False)
    t_wide = p_wide.obs.times[p_wide.obs.valid].abs()
    t_narrow = p_narrow.obs.times[p_narrow.obs.valid].abs()
    assert p_wide.half_window == ch.pair_half_window and float(t_wide.max()) > 3
    assert p_narrow.half_window == 3 and float(t_narrow.max()) <= 3
    assert int((t_wide <= 3).sum()) == t_narrow.numel()  # every observation of the window is kept
    assert narrow.describe()["window_days"] == 3
    with pytest.raises(ValueError, match="needs pairs of at least"):
        p_wide.within(ch.pair_half_window + 1)
