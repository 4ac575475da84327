"""Closure challenges: the similarity's two ends, blow-ups as records, gradients through the solver, physics,
and cnn-online's training through the solver."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from bench import registry
from bench.validate import check

SIZE = "tiny"


@pytest.fixture(scope="module")
def root(tiny_data):
    return tiny_data("l96x", "qg", "qg-jet")


pytestmark = pytest.mark.usefixtures("one_thread_in_tmp")


def _method(name, **params):
    cls = registry.method_class(name)
    return cls(config=cls.make_config(params), device="cpu", progress=False)


def _scores(challenge, method, root):
    ch = registry.get_challenge(challenge)
    method.fit(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root))
    pred = check(ch.run(method, SIZE, root), ch.template(SIZE, root), optional_vars=ch.optional_vars)
    return ch, pred, ch.score(pred, SIZE, root)


def test_similarity_is_zero_for_no_closure_and_one_for_the_truth(root):
    ch, pred, s = _scores("l96x-closure", _method("none"), root)
    assert s["similarity"].value == pytest.approx(0.0, abs=1e-12)  # the reference itself
    X = ch.fields(SIZE, "test", root)[0]
    truth = np.concatenate(list(X), 0)[None]  # the test truth as one "run": the truth's own statistics
    runs = xr.Dataset({"long": (("run", "step", "k"), truth), "blowup": (("run",), np.full(len(truth), -1))})
    d = ch._distances(SIZE, runs["long"].values, root)
    ref = ch._reference(SIZE, root)
    from challenges.closure_online import similarity_scores

    sim = similarity_scores(d, ref, runs["blowup"].values)
    assert sim["mean"][0] > 0.95  # 1 up to the autocorrelation across the joins of the trajectories
    exact = similarity_scores({k: np.zeros_like(v) for k, v in ref.items()}, ref, np.full(len(ref["X"]), -1))
    assert exact["mean"][0] == 1.0 and exact["min"][0] == 1.0


def test_a_deliberately_unstable_closure_is_a_blow_up_not_a_crash(root):
    from baselines.core.closure import ClosureMethod

    class Unstable(ClosureMethod):
        name = "unstable"

        def forcing(self, x, model):
            return 50.0 * x  # exponential growth: |X| passes the bound within a time unit

    ch, pred, s = _scores("l96x-closure", Unstable(), root)
    assert s["blowup"].value == 1.0
    assert all(b is not None and b < 40 for b in s["blowup"].extra["snapshots_to_blowup"])
    assert s["similarity"].value != s["similarity"].value or s["similarity"].extra.get("flag")  # NaN, flagged


def test_polynomial_beats_no_closure_on_long_run_statistics(root):
    _, _, s = _scores("l96x-closure", _method("polynomial"), root)
    assert s["similarity"].value > 0.3 and s["r2"].value > 0.8


def test_gradients_flow_through_the_solver_unroll():
    from challenges.l96x_closure import CoarseL96
    from data_scripts.make_qg import models
    from data_scripts.config import get_config

    c = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

    def l96x(c, x):
        return CoarseL96().step_closed(x, 3, lambda z: c * z).sum()

    x = torch.randn(2, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(l96x, (c, x))
    lr = models(get_config("qg", SIZE))[1]
    q = 1e-6 * torch.randn(1, 2, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    q.requires_grad_(True)
    k = torch.tensor(1e-6, dtype=torch.float64, requires_grad=True)

    def qg(k, q):
        return lr.step_closed(q, 2, lambda z: -k * z).square().sum() * 1e12

    assert torch.autograd.gradcheck(qg, (k, q), eps=1e-9, atol=1e-5, rtol=1e-3)


def test_qg_closure_offline_and_online_scores(root):
    ch, pred, s = _scores("qg-closure", _method("backscatter", back_grid="0.99", smag_grid="0.08"), root)
    for reg in ("eddy", "jet"):
        assert np.isfinite(s[f"r2_{reg}"].value) and np.isfinite(s[f"similarity_{reg}"].value)
        assert len(s[f"short_nrmse_{reg}"].extra["by_lead_days"]) == ch.short_days
        assert s[f"blowup_{reg}"].value == 0.0
    offline = pred[["S_eddy", "S_jet"]]
    s_off = ch.score(offline, SIZE, root)
    assert s_off["similarity_eddy"].extra["flag"].startswith("offline submission")
    truth = ch.truth(SIZE, root)
    assert ch.score(truth, SIZE, root)["r2_jet"].value == pytest.approx(1.0)


def test_the_long_run_tuning_loss_is_zero_without_closure_and_inf_for_a_blow_up(root):
    ch = registry.get_challenge("qg-closure")
    val = ch.split(SIZE, "val", root)
    assert val.long_run_loss(None)[0] == pytest.approx(0.0, abs=1e-12)  # its own reference: similarity 0
    assert np.isinf(val.long_run_loss(lambda x: 1e-5 * x)[0])  # e-folds daily: past the energy bound
    loss = val.long_run_loss(_method("smagorinsky").closure(val.model))[0]
    assert np.isfinite(loss) and loss != 0


def test_a_closure_tuning_objective_is_checked(root):
    from baselines.base import SettingError

    ch = registry.get_challenge("qg-closure")
    with pytest.raises(SettingError, match="objective"):
        _method("smagorinsky", objective="longrun").fit(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root))
    short = _method("smagorinsky", objective="short", grid="0.1,0.15")
    short.fit(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root))
    assert short.constant in (0.1, 0.15) and len(short.tuning["trials"]) == 2


def test_smagorinsky_dissipates_energy():
    from baselines.smagorinsky import smagorinsky_forcing
    from data_scripts.qg import EDDY, QGModel

    m = QGModel(nx=32, **EDDY)
    q = m.step(m.initial_condition(2, 0) * 300, 48)
    S = smagorinsky_forcing(m, q, 0.15)
    rate = m.energy_rate_h(torch.fft.rfft2(q), torch.fft.rfft2(S))
    assert (rate < 0).all()  # an eddy viscosity removes kinetic energy


def test_backscatter_returns_the_stated_fraction_of_the_dissipated_energy():
    from baselines.backscatter import backscatter_forcing
    from data_scripts.qg import EDDY, QGModel

    m = QGModel(nx=32, **EDDY)
    q = m.step(m.initial_condition(2, 0) * 300, 48)
    full = backscatter_forcing(m, q, 0.08, 0.0)
    half = backscatter_forcing(m, q, 0.08, 0.5)
    qh = torch.fft.rfft2(q)
    e_d = m.energy_rate_h(qh, torch.fft.rfft2(full))
    e_b = m.energy_rate_h(qh, torch.fft.rfft2(half - full))
    torch.testing.assert_close(e_b, -0.5 * e_d, rtol=1e-6, atol=0)


@pytest.mark.parametrize("challenge,name", [("qg-closure", "cnn"), ("l96x-closure", "cnn"), ("qg-closure", "gnn")])
def test_a_learned_closure_trains_on_the_offline_pairs(root, challenge, name):
    """The training stack reads closure pairs (state -> S) for every closure world (QG's state var
    shares its name with the x dim, which made it a coordinate and sent it down the DA path)."""
    from baselines.learned.data import PairsDataModule

    ch = registry.get_challenge(challenge)
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    dm = PairsDataModule(train, val, batch_size=4, max_samples=16)
    assert dm.normaliser.inc_std[0] > 0
    m = _method(name, max_epochs=1, max_samples=16, batch_size=4)
    m.context = {"workdir": Path("runs") / challenge, "data_fingerprint": "test", "size": SIZE}
    m.fit(train, val)
    assert m.record["epochs"] == 1 and np.isfinite(m.record["best_val_loss"])
    if name == "cnn":  # an unset kernel is resolved from the grid before the key is made, and recorded
        assert m.config.kernel == 3


def test_the_cnn_kernel_keeps_the_receptive_field_within_half_the_grid():
    """Ross et al.'s FCNN (8 convolutions of 5x5: 33 cells) on their 64² grid, 3x3 (17 cells) on 32² and
    below; the receptive field never exceeds half the grid plus one cell unless the kernel is 3."""
    from baselines.cnn import default_kernel
    from baselines.learned.nets import FCNN

    assert default_kernel((64, 64), 7) == 5 and default_kernel((32, 32), 7) == 3
    assert default_kernel((128, 128), 7) == 9 and default_kernel((8,), 7) == 3
    for n in (16, 24, 32, 48, 64, 96, 128, 256):
        k = default_kernel((n, n), 7)
        assert k % 2 == 1 and (8 * (k - 1) + 1 <= n // 2 + 1 or k == 3)
        assert 8 * (k + 1) + 1 > n // 2 + 1  # the next odd kernel would see more than half the grid
    # the receptive field is what the network computes: a point impulse spreads over 8 * (k - 1) + 1 cells
    net = FCNN(1, 1, 2, (4,) * 7, 3)
    torch.nn.init.constant_(net.head.weight, 1.0)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.constant_(m.weight, 0.1)
            torch.nn.init.zeros_(m.bias)
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 16, 16] = 1.0
    reach = (net(x)[0, 0, 16].abs() > 0).sum().item()
    assert reach == 8 * (3 - 1) + 1


@pytest.mark.parametrize("kernel", ["4", "0"])
def test_an_even_cnn_kernel_is_one_sentence_before_any_data(kernel, tmp_path, monkeypatch, capsys):
    """An even kernel would change the output's shape; it is refused when the settings are made."""
    from bench.cli import main

    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    assert main(["run", "qg-closure", "cnn", "--size", "tiny", "--param", f"kernel={kernel}"]) == 2
    assert "kernel must be an odd number" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


# -- cnn-online: training through the solver, and the offline term's forcing at the start states --

ONLINE_QUICK = {"offline_epochs": "2", "max_epochs": "3", "max_starts": "32", "batch_size": "8", "unroll_max": "2",
         "grow_every": "100", "widths": "16,16", "max_samples": "256"}


def _fit_online(root, **params):
    cls = registry.method_class("cnn-online")
    ch = registry.get_challenge("l96x-closure")
    m = cls(config=cls.make_config({**ONLINE_QUICK, **params}), seed=0, device="cpu", progress=False)
    m.context = {"workdir": Path("runs"), "data_fingerprint": "test", "challenge": ch.name, "size": SIZE}
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    m.fit(train, val)
    return m, train, val


@pytest.mark.parametrize("offline_weight,loss_norm", [("0", "l2"), ("0.5", "l2"), ("0.5", "h-1")])
def test_online_training_runs_through_the_solver_and_records_both_phases(root, offline_weight, loss_norm):
    m, train, _ = _fit_online(root, offline_weight=offline_weight, loss_norm=loss_norm)
    d = m.describe()
    off, on = d["offline_training"], d["online_training"]
    assert off["epochs"] == 2 and on["epochs"] >= 1
    assert np.isfinite(on["best_val_loss"]) and on["best_val_loss"] > 0
    assert on["train_curve"][-1][1] < on["train_curve"][0][1]  # at a fixed unroll the trajectory loss falls
    x = torch.as_tensor(train.states()[:4])
    S = m.closure(train.model)(x)
    assert S.shape == x.shape and torch.isfinite(S).all()


def test_an_unroll_longer_than_the_trajectories_is_one_sentence(root):
    from baselines.base import SettingError
    from baselines.learned.online import TrajectoryDataModule

    ch = registry.get_challenge("l96x-closure")
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    T = train.trajectories().shape[1]
    with pytest.raises(SettingError, match=f"unroll_max .* must be at most {T - 2}"):
        TrajectoryDataModule(train, val, unroll_max=T, batch_size=8)
    assert len(TrajectoryDataModule(train, val, unroll_max=T - 2, batch_size=8).train_starts) > 0


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


@pytest.mark.parametrize("shape", [(40,), (32, 32), (12, 20)])
def test_the_h_minus1_norm_weights_large_scales_and_keeps_a_white_error_s_size(shape):
    """The weights have mean 1, so a white error (flat spectrum) scores its mean square in either norm;
    a single Fourier mode at |k| scores 1/|k|^2 times what the mode |k| = 1 of the same amplitude scores."""
    from baselines.learned.norms import h_minus1_weights

    w = h_minus1_weights(shape).double()
    assert torch.isclose(w.mean(), torch.tensor(1.0, dtype=torch.float64))

    def score(field):
        modes = torch.fft.fftn(field, dim=tuple(range(field.ndim)), norm="ortho")
        return float((w * modes.abs() ** 2).mean())

    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij")

    def wave(k):  # a cosine of integer wavenumber k along the first axis
        return torch.cos(2 * np.pi * k * grids[0] / shape[0])

    assert score(wave(1)) / score(wave(4)) == pytest.approx(16.0, rel=1e-9)


@pytest.mark.parametrize("name,setting", [("cnn-online", "loss_norm"), ("cnn-online", "forcing_norm"),
                                          ("cnn", "forcing_norm")])
def test_an_unknown_loss_norm_is_one_sentence(name, setting):
    from baselines.base import SettingError
    from baselines.cnn import NORMS
    from baselines.learned import norms

    assert NORMS == norms.NORMS  # the settings' list (checked without torch) is the norms module's
    with pytest.raises(SettingError, match=f"{setting} must be one of l2, h-1"):
        registry.method_class(name).make_config({setting: "h1"})


def test_the_h_minus1_forcing_loss_trains_and_is_a_different_checkpoint(root):
    """cnn with forcing_norm=h-1: the loss is the weighted norm of the forcing error (not the MSE), it falls,
    and the setting makes its own checkpoint (never the l2 one reused)."""
    from baselines.learned.norms import mean_square

    ch = registry.get_challenge("l96x-closure")
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    records = {}
    for norm in ("l2", "h-1"):
        m = _method("cnn", max_epochs=3, max_samples=64, batch_size=8, widths="8,8", forcing_norm=norm)
        m.context = {"workdir": Path("runs") / "l96x-closure", "data_fingerprint": "test", "size": SIZE}
        m.fit(train, val)
        records[norm] = m.record
        assert m.learner.forcing_norm == norm
    curve = records["h-1"]["train_curve"]
    assert curve[-1][1] < curve[0][1]
    assert records["h-1"]["key"] != records["l2"]["key"]
    err = torch.zeros(2, 1, 8, dtype=torch.float64)
    err[..., 0] = 1.0  # an error at one point: every mode the same amplitude, so both norms agree
    assert float(mean_square(err, "h-1", 1)) == pytest.approx(float(mean_square(err, "l2", 1)))
    err = torch.cos(2 * np.pi * torch.arange(8.0) / 8).reshape(1, 1, 8)  # the largest scale weighs more
    assert float(mean_square(err, "h-1", 1)) > 2 * float(mean_square(err, "l2", 1))
