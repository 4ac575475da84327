"""``diffda`` end to end on tiny data: ensembles that validate and score, and inpainting that honours the observations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench import registry
from bench.validate import check

SIZE = "tiny"
QUICK = {"max_epochs": "2", "max_samples": "64", "batch_size": "16", "members": "4", "n_steps": "10",
         "base_channels": "8"}


@pytest.fixture(scope="module")
def root(tiny_data):
    return tiny_data("l96", "qg")


pytestmark = pytest.mark.usefixtures("one_thread_in_tmp")


def _fit(challenge, root, **params):
    cls = registry.method_class("diffda")
    ch = registry.get_challenge(challenge)
    m = cls(config=cls.make_config({**QUICK, **params}), seed=0, device="cpu", progress=False)
    m.context = {"workdir": Path("runs") / challenge, "data_fingerprint": "test", "size": SIZE}
    m.fit(ch.split(SIZE, "train", root), ch.split(SIZE, "val", root))
    return ch, m


@pytest.mark.parametrize("challenge,params", [("l96-da", {}), ("qg-da", {}), ("l96-cycle", {}), ("qg-cycle", {}),
                                              ("qg-cycle", {"cycle_condition": "mean"})])
def test_an_ensemble_prediction_validates_and_yields_crps(root, challenge, params):
    ch, m = _fit(challenge, root, **params)
    pred = ch.run(m, SIZE, root)
    assert pred[ch.variables[0]].sizes["member"] == 4
    pred = check(pred, ch.template(SIZE, root), optional_dims=ch.optional_dims)
    s = ch.score(pred, SIZE, root)
    assert np.isfinite(s["crps"].value) and np.isfinite(s["spread_skill"].value)
    hist = s["spread_skill"].extra["rank_histogram"]
    assert len(hist) == 5 and sum(hist) > 0
    d = m.describe()
    assert d["network_evaluations_per_sample"] == 10 and d["sampling_seconds"] > 0 and d["members"] == 4


def test_the_unconditional_mapping_prior_gives_maps_that_validate(root):
    """qg-map has no background: DiffDA samples SSH maps from its prior, observations by inpainting."""
    ch, m = _fit("qg-map", root)
    pred = check(ch.run(m, SIZE, root), ch.template(SIZE, root), optional_dims=ch.optional_dims)
    assert np.isfinite(pred["ssh"].values).all()
    assert np.isfinite(ch.score(pred, SIZE, root)["mu"].value)
    d = m.describe()
    assert d["conditioning"] == "inpainting" and d["network_evaluations_per_sample"] == 10
    assert d["replacement"] == "matched" and d["half_window_days"] == 10
    E = d["known_map_obs_error_var"]
    assert len(E) == 11 and all(e > 0 for e in E) and 0.0 <= d["known_map_error_correlation"] <= 1.0
    assert E[10] > E[0]  # an observation ten days from the map's day says less about it than one of that day


def test_the_known_map_weights_observations_by_their_time_offset():
    """Two observations in one cell, of the day and two days off: the inverse-variance mean of E(|t|), whose
    variance mixes the independent 1 / sum w and the fully correlated (sum w sqrt e / sum w)^2 by rho."""
    from baselines.diffda import known_map
    from challenges import qg_world as W

    g = W.geometry("tiny")
    pos = torch.tensor([[[100.0, 40.0], [110.0, 50.0], [500.0, 500.0]]], dtype=torch.float64)
    y = torch.tensor([[1.0, 4.0, 9.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, -2.0, 0.5]], dtype=torch.float64)
    valid = torch.tensor([[True, True, False]])
    E = [0.1, 0.2, 0.3]
    w = torch.tensor([1 / 0.1, 1 / 0.3], dtype=torch.float64)
    for rho in (0.0, 0.3, 1.0):
        xt, var = known_map(g, pos, y, t, valid, E, rho)
        cell = (1, 0)  # y = 100 km, x = 40 km on 62.5 km cells
        torch.testing.assert_close(xt[0, 0][cell], (w[0] * 1.0 + w[1] * 4.0) / w.sum())
        v_ind = 1 / w.sum()
        v_cor = ((w[0] * 0.1 ** 0.5 + w[1] * 0.3 ** 0.5) / w.sum()) ** 2
        torch.testing.assert_close(var[0, 0][cell], rho * v_cor + (1 - rho) * v_ind)
        assert torch.isinf(var).sum() == g.n_points - 1 and (xt[torch.isinf(var)] == 0).all()  # padding ignored


def test_inpainting_with_a_hard_full_mask_returns_the_observations(root):
    """sigma_G -> 0 and weight 1: the analysis equals the observations at the observed variables."""
    ch, m = _fit("l96-da", root, replacement="blend", sigma_g="0", mask_weight="1.0", perturb_obs="false")
    problem = list(ch.cases(SIZE, root))[1]  # 50 % observed
    xa = torch.as_tensor(m.predict(problem)["x"].transpose("case", "member", "i").values)
    obs = problem.obs
    observed = xa[:, :, :][obs.valid[:, None, :].expand_as(xa)]
    wanted = obs.values[:, None, :].expand_as(xa)[obs.valid[:, None, :].expand_as(xa)]
    torch.testing.assert_close(observed, wanted, atol=1e-6, rtol=0)
    unobserved = xa[~obs.valid[:, None, :].expand_as(xa)]
    assert unobserved.std() > 0  # elsewhere the members differ: the prior fills the gaps


def test_perturbed_observations_give_each_member_its_own_draw_of_the_observation_error(root):
    """Hard full mask, perturb_obs: at observed variables member k equals y + e_k, e_k ~ N(0, R)."""
    ch, m = _fit("l96-da", root, replacement="blend", sigma_g="0", mask_weight="1.0", members="16")
    problem = list(ch.cases(SIZE, root))[1]
    xa = torch.as_tensor(m.predict(problem)["x"].transpose("case", "member", "i").values)
    v = problem.obs.valid[:, None, :].expand_as(xa)
    e = (xa - problem.obs.values[:, None, :])[v]
    sigma = float(problem.obs.error_var()[problem.obs.valid].sqrt().mean())
    assert abs(float(e.mean())) < 0.05 * sigma and float(e.std()) == pytest.approx(sigma, rel=0.05)
    assert float(xa.std(1)[problem.obs.valid].mean()) == pytest.approx(sigma, rel=0.1)  # members differ there


def test_the_default_trusts_noisy_observations_less_than_the_paper():
    from baselines.diffda import DiffDA

    c = DiffDA.Config()
    assert c.replacement == "matched" and c.eta == 1.0 and c.n_steps <= 50 and c.perturb_obs is None
    assert c.cycle_condition == "member"
    assert DiffDA(config=c, seed=0, device="cpu", progress=False)._perturb is False  # matched samples R itself
    assert DiffDA(config=DiffDA.make_config({"replacement": "blend"}), seed=0, device="cpu", progress=False)._perturb


def test_matched_replacement_leaves_an_observed_cell_to_the_denoiser_below_its_error(root):
    """Matched: the error variance is the observation's over the background's, per observation in a cell,
    and cells without an observation are never replaced."""
    ch, m = _fit("l96-da", root)
    problem = list(ch.cases(SIZE, root))[1]
    _, mask = m._known(problem)
    ev = m._error_var(problem, mask)
    r = float(problem.obs.error_var()[problem.obs.valid].mean())
    expected = r / (m.learner.norm.innov_std ** 2 - r)
    assert torch.isinf(ev[mask == 0]).all()
    torch.testing.assert_close(ev[mask == 1], torch.full_like(ev[mask == 1], expected))
    d = m.describe()
    assert d["replacement"] == "matched" and "mask_weight" not in d and d["perturbed_observations"] is False


def test_an_unknown_replacement_is_one_sentence(root):
    from baselines.base import SettingError

    with pytest.raises(SettingError, match="replacement must be"):
        _fit("l96-da", root, replacement="paste")


def test_sampling_settings_reuse_the_trained_model_and_training_settings_do_not():
    from baselines.diffda import DiffDA
    from baselines.learned.train import checkpoint_key

    def key(**params):
        m = DiffDA(config=DiffDA.make_config(params), seed=0, device="cpu", progress=False)
        m.context = {"data_fingerprint": "f", "size": SIZE}
        return checkpoint_key(m)

    base = key()
    assert key(n_steps="10", members="4", replacement="blend", eta="0") == base
    assert key(base_channels="8") != base and key(parameterization="eps") != base


def test_a_known_field_regressed_from_ssh_carries_the_error_measured_on_train(root):
    """qg-da: the known PV increment is regressed from SSH innovations; the matched replacement uses its
    error against the true increment on train samples, one value per layer, at observed cells only."""
    ch, m = _fit("qg-da", root)
    assert len(m.known_error) == 2 and all(0 < v < 10 for v in m.known_error)
    problem = list(ch.cases(SIZE, root))[0]
    _, mask = m._known(problem)
    ev = m._error_var(problem, mask)
    for level, r in enumerate(m.known_error):
        assert torch.isinf(ev[:, level][mask[:, 0] == 0]).all()
        torch.testing.assert_close(ev[:, level][mask[:, 0] > 0], torch.full_like(ev[:, level][mask[:, 0] > 0], r))
    assert m.describe()["known_field_error_var"] == [round(v, 4) for v in m.known_error]


def _ensemble_case(ch, root, spread: float):
    """A 50 %-observed l96-da case whose background is a 4-member ensemble about the given one."""
    problem = list(ch.cases(SIZE, root))[1]
    gen = torch.Generator().manual_seed(3)
    xb = problem.background
    e = spread * torch.randn((xb.shape[0], 4, *xb.shape[1:]), generator=gen, dtype=torch.float64)
    return problem, problem.with_background(xb[:, None] + e)


def _analysis(m, problem, condition):
    m.config.cycle_condition = condition
    m.stats["samples"] = 0  # the same draws for both settings
    return torch.as_tensor(m.predict(problem)["x"].transpose("case", "member", "i").values)


def test_member_conditioning_of_identical_members_is_mean_conditioning(root):
    """Every member equal to the mean: conditioning each on its own forecast is conditioning on the mean."""
    ch, m = _fit("l96-da", root)
    problem, _ = _ensemble_case(ch, root, 0.0)
    same = problem.with_background(problem.background[:, None].expand(-1, 4, -1).clone())
    torch.testing.assert_close(_analysis(m, same, "member"), _analysis(m, same, "mean"), atol=1e-5, rtol=0)


def test_member_conditioning_carries_the_forecast_spread_into_the_analysis(root):
    """Unobserved variables: with cycle_condition=member, member k's analysis anomaly follows its forecast
    anomaly (as in the stochastic EnKF); conditioned on the mean it cannot."""
    ch, m = _fit("l96-da", root)
    problem, ens = _ensemble_case(ch, root, 1.0)
    free = ~problem.obs.valid[:, None, :].expand(-1, 4, -1)
    xb_anom = (ens.background - ens.background.mean(1, keepdim=True))[free]

    def corr(xa):
        a = (xa - xa.mean(1, keepdim=True))[free]
        return float(torch.corrcoef(torch.stack([a, xb_anom]))[0, 1])

    assert corr(_analysis(m, ens, "member")) > 0.5
    assert abs(corr(_analysis(m, ens, "mean"))) < 0.2
    assert m.describe()["cycle_condition"] == "mean"


def test_an_unknown_cycle_condition_is_one_sentence(root):
    from baselines.base import SettingError

    with pytest.raises(SettingError, match="cycle_condition must be"):
        _fit("l96-da", root, cycle_condition="median")
