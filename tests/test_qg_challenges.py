"""QG challenges (qg-map, qg-da, qg-fc48, qg-cycle) and their classical methods, at size tiny.

Formats and validation, perfect predictions, the exact observation operator,
the spectral B, OI's exact-interpolation properties, floors losing to OI, and
``bench score`` rejecting invalid submissions with exit code 2.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from bench.cli import main
from bench.validate import problems
from challenges import gridding
from challenges import qg_obs as O
from challenges import qg_world as Q
from challenges.qg_cycle import QGCycle
from challenges.qg_da import QGDA
from challenges.qg_fc48 import QGFc48
from challenges.qg_map import QGMap

SIZE = "tiny"


@pytest.fixture(scope="module")
def root(tiny_data):
    """A qg/tiny dataset (conftest.py: $BENCH_DATA in CI, else one temp dir per session)."""
    return tiny_data("qg")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small FFTs and batched solves run fastest on one intra-op thread (and never stall on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _challenge(cls, root):
    return cls()


def _method(cls, **params):
    return cls(config=cls.make_config(params), device="cpu", progress=False)


# -- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls, var, dims", [
    (QGMap, "ssh", ("traj", "time", "y", "x")),
    (QGDA, "q", ("traj", "time", "lev", "y", "x")),
    (QGFc48, "q", ("traj", "time", "lead", "lev", "y", "x")),
    (QGCycle, "q", ("traj", "time", "lev", "y", "x")),
])
def test_template_and_truth_formats(root, cls, var, dims):
    ch = _challenge(cls, root)
    tmpl = ch.template(SIZE, root)
    assert list(tmpl.data_vars) == [var]
    assert tmpl[var].dims == dims
    assert np.isnan(tmpl[var].values).all()
    assert tmpl["x"].attrs["units"] == "km" and tmpl["time"].attrs["units"] == "days"
    truth = ch.truth(SIZE, root)
    assert problems(truth, tmpl, ch.optional_dims) == []
    assert problems(tmpl, tmpl, ch.optional_dims)  # NaN is rejected
    lo, hi = tmpl[var].attrs["valid_min"], tmpl[var].attrs["valid_max"]
    assert lo < float(truth[var].min()) and float(truth[var].max()) < hi
    huge = truth.copy(deep=True)
    huge[var].values[(0,) * huge[var].ndim] = 1e300  # finite, but no prediction
    assert any("physical range" in p for p in problems(huge, tmpl, ch.optional_dims))


def test_cases_are_typed_problems_with_the_full_error_model(root):
    ch = _challenge(QGDA, root)
    problem = next(iter(ch.cases(SIZE, root)))
    case = ch.case(SIZE, 0, root=root)
    assert not {"q", "ssh", "psi", "target"} & set(case.data_vars)
    assert case["obs_x"].dims == ("time", "obs") and case.sizes["obs"] == O.n_random(SIZE, 0.2)
    assert problem.obs.P == O.n_random(SIZE, 0.2) and problem.B == case.sizes["time"]
    sr = ch.sigma_repr(SIZE, root)
    assert problem.obs.sigma_repr == sr > 0 and case.attrs["obs_sigma_repr"] == sr
    r = problem.obs.error_var()
    assert torch.allclose(r, problem.obs.sigma ** 2 + sr ** 2)
    assert torch.allclose(problem.obs.error_var("instrument"), problem.obs.sigma ** 2)
    mp = next(iter(_challenge(QGMap, root).cases(SIZE, root)))
    assert mp.obs.times is not None and mp.smoothing is not None


# -- perfect predictions -----------------------------------------------------------------------


def test_perfect_predictions_score_perfectly(root):
    for cls in (QGMap, QGDA, QGCycle):
        ch = _challenge(cls, root)
        s = ch.score(ch.truth(SIZE, root), SIZE, root)
        assert s["mu"].value == pytest.approx(1.0)
        assert s["lambda_iso_km"].extra.get("flag") == "all_resolved"
    ch = _challenge(QGDA, root)
    s = ch.score(ch.truth(SIZE, root), SIZE, root)
    assert s["gain"].value == pytest.approx(1.0)
    assert s["lead_gained_h"].value == pytest.approx(ch.lead_hours)  # the truth: as good as a 0 h forecast
    fc = _challenge(QGFc48, root)
    s = fc.score(fc.truth(SIZE, root), SIZE, root)
    assert s["rmse_48h"].value == pytest.approx(0.0) and s["acc_48h"].value == pytest.approx(1.0)


def test_lead_curve_and_lead_gained(root):
    ch = _challenge(QGDA, root)
    curve = ch.lead_curve(SIZE, root)
    # the truth regenerated between the stored days is the stored truth to the bit (same recipe, same CPU)
    assert curve["sub_daily"], curve["note"]
    assert curve["lead_h"] == [float(h) for h in range(24)] + [24.0 * k for k in range(1, 8)]
    assert curve["rmse_m"][0] == 0.0
    assert np.all(np.diff(curve["rmse_m"]) > 0)  # forecast errors grow with lead
    # the LR model's filter removes the truth's smallest scales within hours: the error curve is concave
    # below one day, so a line from 0 to 24 h would understate every sub-daily error
    assert curve["rmse_m"][12] > 0.5 * curve["rmse_m"][24] and curve["rmse_m"][1] > curve["rmse_m"][24] / 24
    bg = xr.Dataset({"q": ch.backgrounds(SIZE, "test", root)})
    s = ch.score(bg, SIZE, root)
    assert s["lead_gained_h"].value == pytest.approx(0.0, abs=1e-6)
    assert s["equivalent_lead_h"].value == pytest.approx(ch.lead_hours, abs=1e-6)
    clim = xr.zeros_like(bg)
    assert ch.score(clim, SIZE, root)["lead_gained_h"].value is not None
    assert np.isnan(ch.score(clim, SIZE, root)["lead_gained_h"].value)  # worse than the background: undefined


def test_sigma_repr_is_recovered_from_synthetic_observations():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal(20000) * 0.02
    sigma, sigma_r = 0.003, 0.0048
    obs = truth + rng.standard_normal(truth.size) * np.hypot(sigma, sigma_r)
    est = O.estimate_sigma_repr(obs, truth, np.full(truth.size, sigma))
    assert est == pytest.approx(sigma_r, rel=0.03)
    assert O.estimate_sigma_repr(truth + rng.standard_normal(truth.size) * sigma, truth, np.full(truth.size, sigma)) < 5e-4


def test_forecast_reference_rows(root):
    fc = _challenge(QGFc48, root)
    refs = fc.references(SIZE, root)
    st = fc.score(refs["forecast-from-truth"][0], SIZE, root)
    sb = fc.score(refs["forecast-from-background"][0], SIZE, root)
    assert st["rmse_0h"].value == pytest.approx(0.0, abs=1e-12)
    assert 0 < st["rmse_48h"].value
    assert sb["rmse_0h"].value > 0


# -- observation operator and B ----------------------------------------------------------------


def test_interpolator_is_exact_and_adjoint():
    from data_scripts.obs import TrigInterpolator, sample_spectral

    g = torch.Generator().manual_seed(0)
    n, L = 16, 1000.0
    f = torch.randn(2, n, n, generator=g, dtype=torch.float64)
    x = torch.rand(2, 40, generator=g, dtype=torch.float64) * L
    y = torch.rand(2, 40, generator=g, dtype=torch.float64) * L
    H = TrigInterpolator(x, y, n, n, L, L)
    ref = sample_spectral(torch.fft.rfft2(f), x, y, L, L, n, n)
    assert torch.allclose(H.forward(f), ref, atol=1e-12)
    w = torch.randn(2, 40, generator=g, dtype=torch.float64)
    assert float((H.forward(f) * w).sum()) == pytest.approx(float((f * H.adjoint(w)).sum()), rel=1e-10)


def test_observation_operator_adjoint(root):
    problem = next(iter(_challenge(QGDA, root).cases(SIZE, root)))
    g = torch.Generator().manual_seed(5)
    x = torch.randn(problem.B, 2, 16, 16, generator=g, dtype=torch.float64)
    w = torch.randn(problem.B, problem.obs.P, generator=g, dtype=torch.float64)
    assert float((problem.H(x) * w).sum()) == pytest.approx(float((x * problem.H.adjoint(w)).sum()), rel=1e-9)


def test_spectral_covariance_statistics(root):
    from baselines.core.spectral_covariance import SpectralCovariance

    xb, xt = _challenge(QGDA, root).split(SIZE, "train", root).pairs()
    err = xb - xt
    B = SpectralCovariance.from_samples(err)
    assert np.allclose(B.variance().numpy(), err.var((0, 2, 3)) + err.mean((0, 2, 3)) ** 2, rtol=0.05)
    draws = B.sample(400, torch.Generator().manual_seed(1))
    assert np.allclose(draws.std((0, 2, 3)).numpy(), np.sqrt(B.variance().numpy()), rtol=0.1)
    v = torch.randn(3, 2, 16, 16, dtype=torch.float64)
    w = torch.randn(3, 2, 16, 16, dtype=torch.float64)
    assert float((B.sqrt_apply(v) * w).sum()) == pytest.approx(float((v * B.sqrt_apply_T(w)).sum()), rel=1e-10)
    t = Q.ssh_transfer(SIZE)
    r = B.field_regression(t)
    ok = (t * r).sum(0).abs() > 0
    assert torch.allclose((t * r).sum(0)[ok], torch.ones(1, dtype=torch.float64))


def test_superobs_average_per_cell():
    so = gridding.superobs(np.zeros(4), np.array([10.0, 20.0, 990.0, 70.0]), np.array([5.0, 5.0, 5.0, 5.0]),
                           np.array([1.0, 3.0, 5.0, 7.0]), 0.1, nx=16, L=1000.0)
    assert so["n"].tolist() == [2, 1, 1]
    assert so["value"][0] == pytest.approx(2.0) and so["x"][0] == pytest.approx(15.0)
    assert so["sigma"][0] == pytest.approx(0.1 / np.sqrt(2))


# -- OI ---------------------------------------------------------------------------------------------


def test_oi_one_noise_free_observation_reproduces_the_covariance():
    from baselines.core.gaussian_oi import solve_gaussian_oi

    L, Lx, Lt, var = 1000.0, 80.0, 5.0, 2.0
    xg = (np.arange(16) + 0.5) * L / 16
    X, Y = np.meshgrid(xg, xg)
    one = lambda v: torch.tensor([[v]], dtype=torch.float64)
    g = torch.as_tensor(xg)[None]
    ok = torch.ones(1, 1, dtype=torch.bool)
    est = solve_gaussian_oi(one(990.0), one(500.0), one(1.0), one(0.3), one(0.0), ok, g, g,
                            torch.tensor([[3.0, 1.0]], dtype=torch.float64), Lx, Lt, var, L)[0].numpy()
    dx = (X - 990.0 + L / 2) % L - L / 2  # periodic distance: wraps across x = 0
    shape = np.exp(-(dx ** 2 + (Y - 500.0) ** 2) / Lx ** 2)
    assert np.allclose(est[0], 0.3 * shape * np.exp(-4.0 / Lt ** 2), atol=1e-12)
    assert np.allclose(est[1], 0.3 * shape, atol=1e-12)
    at_obs = solve_gaussian_oi(one(990.0), one(500.0), one(1.0), one(0.3), one(0.0), ok, one(990.0), one(500.0),
                               one(1.0), Lx, Lt, var, L)
    assert float(at_obs) == pytest.approx(0.3)


def test_oi_padding_does_not_change_the_estimate():
    from baselines.core.gaussian_oi import solve_gaussian_oi

    g = torch.Generator().manual_seed(3)
    P = 12
    ox, oy = torch.rand(1, P, generator=g, dtype=torch.float64) * 1000, torch.rand(1, P, generator=g, dtype=torch.float64) * 1000
    ot, d = torch.rand(1, P, generator=g, dtype=torch.float64), torch.randn(1, P, generator=g, dtype=torch.float64)
    R = torch.full((1, P), 0.1, dtype=torch.float64)
    gx, gy, gt = ox[:, :5] + 7, oy[:, :4] - 3, torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    full = solve_gaussian_oi(ox, oy, ot, d, R, torch.ones(1, P, dtype=torch.bool), gx, gy, gt, 100.0, 3.0, 1.0, 1000.0)
    pad = lambda a, v: torch.cat([a, torch.full((1, 5), v, dtype=torch.float64)], 1)
    mask = torch.cat([torch.ones(1, P, dtype=torch.bool), torch.zeros(1, 5, dtype=torch.bool)], 1)
    padded = solve_gaussian_oi(pad(ox, 3.0), pad(oy, 4.0), pad(ot, 0.0), pad(d, 9.0), pad(R, 0.0), mask, gx, gy, gt,
                               100.0, 3.0, 1.0, 1000.0)
    assert full.shape == (1, 2, 4, 5)
    assert torch.allclose(full, padded, atol=1e-12)


def test_oi_patches_and_blocks_match_the_global_solution():
    from baselines.core.gaussian_oi import map_oi

    rng = np.random.default_rng(0)
    n = 400
    sobs = {"time": np.sort(rng.uniform(0, 20, n)), "x": rng.uniform(0, 1000, n), "y": rng.uniform(0, 1000, n),
            "value": rng.standard_normal(n), "sigma": np.full(n, 0.3)}
    xg = (np.arange(16) + 0.5) * 1000 / 16
    times = np.arange(0.0, 20.0)
    glob = map_oi(sobs, times, xg, 1000.0, 40.0, 3.0, 1.0, 0.1, max_obs=10 ** 6, cap=10 ** 6)
    local = map_oi(sobs, times, xg, 1000.0, 40.0, 3.0, 1.0, 0.1, max_obs=50, cap=10 ** 6)
    assert np.abs(local - glob).max() < 1e-2 * np.abs(glob).max()  # halo 2.5 Lx: exp(-6.25) tails


def test_floors_lose_to_oi_on_qg_map(root):
    from baselines.climatology import Climatology
    from baselines.oi import OI

    ch = _challenge(QGMap, root)
    train, val = ch.split(SIZE, "train", root), ch.split(SIZE, "val", root)
    clim = _method(Climatology)
    clim.fit(train, val)
    oi = _method(OI)
    oi.L, oi.xg = train.geometry.length[0], train.geometry.axis_coords(0)
    oi.mean = float(train.states().mean())
    oi.stats["var"] = float(((train.states() - oi.mean) ** 2).mean())
    oi.params = dict(Lx=80.0, Lt=5.0, noise=0.3)  # fixed, sensible scales: the tuning search is exercised by `bench run`
    cases = list(ch.cases(SIZE, root))
    s_oi = ch.score(ch.assemble([oi.predict(c) for c in cases], SIZE, root), SIZE, root)
    s_cl = ch.score(ch.assemble([clim.predict(c) for c in cases], SIZE, root), SIZE, root)
    assert s_oi["mu"].value > s_cl["mu"].value + 0.1
    assert s_oi["rmse"].value < s_cl["rmse"].value
    assert s_oi["lambda_iso_km"].value < s_cl["lambda_iso_km"].value


def test_3dvar_gains_over_the_background(root):
    from baselines.var3d import Var3D, estimate_B

    ch = _challenge(QGDA, root)
    ch.fraction = 1.0
    train = ch.split(SIZE, "train", root)
    xb, xt = train.pairs()
    m = _method(Var3D)
    m.B = estimate_B(xb - xt, train.geometry, "cpu", center=False)
    m.scale = 1.0
    m.settings = m._defaults(train.geometry)
    pred = ch.assemble([m.predict(c) for c in ch.cases(SIZE, root)], SIZE, root)
    s = ch.score(pred, SIZE, root)
    assert s["gain"].value > 0.0
    assert max(m._iters) < 500


def test_cycling_3dvar_stays_finite_and_beats_the_free_run(root):
    from baselines.var3d import Var3D, estimate_B
    from challenges import cycling

    ch = _challenge(QGCycle, root)
    train = ch.split(SIZE, "train", root)
    m = _method(Var3D)
    m.B = estimate_B(train.states()[::2], train.geometry, "cpu", center=True)
    m.scale = 0.25
    m.settings = m._defaults(train.geometry)
    out = cycling.run(m.predict, ch.experiment(SIZE, "test", root), n_cycles=30)
    assert not bool(out.restarted.any())
    assert np.isfinite(out.q.values).all()
    ps = Q.ssh_of_q_np(SIZE, out.q.values[:, 10:])
    ts = Q.ssh_of_q_np(SIZE, ch.split_data(SIZE, "test", root)["q"][:, 10:30])
    free = np.sqrt((ts ** 2).mean())  # the free run stays at the (zero-SSH) cold start
    assert np.sqrt(((ps - ts) ** 2).mean()) < 0.9 * free


def test_fixed_network_observes_the_same_positions_every_cycle(root):
    from challenges.qg_cycle import QGCycleFixed

    fixed = _challenge(QGCycleFixed, root).split_data(SIZE, "test", root)["obs"]
    moving = _challenge(QGCycle, root).split_data(SIZE, "test", root)["obs"]
    assert fixed["x"].shape == moving["x"].shape  # same density, (traj, cycle, obs)
    for k in ("x", "y"):
        np.testing.assert_array_equal(fixed[k], np.broadcast_to(fixed[k][:, :1], fixed[k].shape))
        assert not np.array_equal(moving[k][:, 0], moving[k][:, 1])
    assert not np.array_equal(fixed["value"][:, 0], fixed["value"][:, 1])  # the field evolves under them


def test_letkf_analysis_reduces_error_and_spread(root):
    from dataclasses import replace

    from baselines.core.ensemble_transform import anomaly_ensemble
    from baselines.letkf import letkf_analysis

    ch = _challenge(QGCycle, root)
    ch.fraction = 1.0
    states = ch.split(SIZE, "train", root).states()
    exp = ch.experiment(SIZE, "test", root)
    problem = exp.make_problem(0, exp.background0)
    truth = torch.as_tensor(ch.split_data(SIZE, "test", root)["q"][:, 0])
    # accurate synthetic observations of the LR truth: the analysis must use them
    obs = replace(problem.obs, values=problem.H(truth), sigma=torch.full_like(problem.obs.sigma, 1e-3), sigma_repr=0.0)
    problem = replace(problem, obs=obs)
    X = anomaly_ensemble(problem.background, states, 20, seed=0)
    Xa = letkf_analysis(problem, X, problem.param(1.0), problem.param(60.0), obs.rinv(),
                        problem.transforms["streamfunction"])
    model = Q.lr_model(SIZE)
    err = lambda X: float(((Q.ssh_of_q(model, X.mean(1)) - Q.ssh_of_q(model, truth)) ** 2).mean().sqrt())
    spread = lambda X: float(Q.ssh_of_q(model, X).var(1).mean().sqrt())
    assert err(Xa) < 0.9 * err(X)  # 20 members, degenerate tiny climatology: a modest but clear gain
    assert spread(Xa) < spread(X)
    assert Xa.shape == X.shape and torch.isfinite(Xa).all()


# -- bench score: invalid submissions -----------------------------------------------------------------


def test_invalid_submissions_exit_2_and_write_nothing(root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `bench score` saves the scored prediction under ./runs
    results = tmp_path / "results"
    tmpl = tmp_path / "t.zarr"
    assert main(["template", "qg-map", str(tmpl), "--size", SIZE, "--root", str(root)]) == 0
    base = ["--name", "x", "--size", SIZE, "--root", str(root), "--results", str(results)]
    assert main(["score", "qg-map", str(tmpl), *base]) == 2  # all NaN
    truth = _challenge(QGMap, root).truth(SIZE, root)
    bad = tmp_path / "dims.nc"
    truth.isel(x=0, drop=True).to_netcdf(bad)
    assert main(["score", "qg-map", str(bad), *base]) == 2
    short = tmp_path / "short.nc"
    truth.isel(time=slice(0, 5)).to_netcdf(short)
    assert main(["score", "qg-map", str(short), *base]) == 2
    wrong = tmp_path / "var.nc"
    truth.rename({"ssh": "eta"}).to_netcdf(wrong)
    assert main(["score", "qg-da", str(wrong), *base]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("bench:") == 4
    assert not results.exists()
    good = tmp_path / "good.nc"
    truth.to_netcdf(good)
    assert main(["score", "qg-map", str(good), *base]) == 0
    res = json.loads((results / "qg-map" / SIZE / "x.json").read_text())
    assert res["scores"]["mu"]["value"] == pytest.approx(1.0)


def test_lead_curve_falls_back_to_daily_leads_when_the_regenerated_truth_differs(root, monkeypatch):
    """On a CPU whose regeneration is not the stored bytes, no sub-daily state is trusted."""
    import data_scripts.generate as G

    real = G.regenerate_states
    monkeypatch.setattr(G, "regenerate_states", lambda *a, **k: real(*a, **k) * np.float32(1 + 1e-6))
    ch = _challenge(QGDA, root)
    curve = ch._lead_curve(SIZE, root)
    assert not curve["sub_daily"] and "differs" in curve["note"]
    assert curve["lead_h"] == [24.0 * k for k in range(8)]
