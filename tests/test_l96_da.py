"""L96 DA challenges, the cycling harness and the classical DA methods (tiny size, CPU, < 60 s).

Exact identities first (3D-Var by CG equals the Kalman update; ETKF mean and
covariance equal the Kalman filter's for the ensemble covariance; LETKF
without localisation equals the ETKF; Gaspari–Cohn values), then the harness
(forecast chaining, restarts, ensembles), then the challenges end to end with
tuned methods, checked against the literature's analysis RMSE with margins
wide enough for 2 x 400 tiny cycles.
"""
import numpy as np
import pytest
import torch

import metrics
from baselines.background import Background
from baselines.clim_oi import ClimOI, climatological_oi
from baselines.climatology import Climatology
from baselines.core.covariance import StateCovariance
from baselines.core.ensemble_transform import posterior_draws
from baselines.core.localization import gaspari_cohn, periodic_distance, taper
from baselines.enkf import EnKF, etkf_analysis
from baselines.letkf import LETKF, letkf_analysis
from baselines.persistence import Persistence
from baselines.var3d import Var3D, var3d_analysis
from bench.validate import check
from challenges import cycling
from challenges import l96_world as W
from challenges.geometry import RING, Geometry
from challenges.l96_cycle import L96Cycle
from challenges.l96_da import L96DA
from challenges.l96_fc48 import L96Fc48
from challenges.problems import AnalysisProblem, FieldMap, ObservationOperator, Observations


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from data_scripts.generate import generate

    path = tmp_path_factory.mktemp("data")
    generate("l96", "tiny", root=path, progress=False)
    return path


def _spd(n, rng):
    a = rng.standard_normal((n, n))
    return a @ a.T / n + 0.1 * np.eye(n)


def _kalman(xb, y, mask, B, sigma=1.0):
    """xb + B H^T (H B H^T + R)^-1 (y - H xb) for one state, H = rows of the observed variables."""
    H = np.eye(len(xb))[mask]
    K = B @ H.T @ np.linalg.inv(H @ B @ H.T + sigma**2 * np.eye(H.shape[0]))
    return xb + K @ (y[mask] - xb[mask]), (np.eye(len(xb)) - K @ H) @ B


# -- numerical pieces -----------------------------------------------------------------


def test_covariance_square_root_and_samples():
    rng = np.random.default_rng(0)
    B = _spd(12, rng)
    cov = StateCovariance(B)
    U = cov.sqrt.numpy()
    np.testing.assert_allclose(U @ U.T, B, atol=1e-12)
    v = torch.randn(5, 12, dtype=torch.float64)
    x = torch.randn(5, 12, dtype=torch.float64)
    torch.testing.assert_close((cov.sqrt_apply(v) * x).sum(), (v * cov.sqrt_apply_T(x)).sum())
    s = cov.sample(20000, torch.Generator().manual_seed(1)).numpy()
    np.testing.assert_allclose(np.cov(s.T), B, atol=0.06)


def _ring_problem(xb, y, mask, sigma=1.0):
    """An AnalysisProblem on a ring of len(xb[0]) points observing the masked variables."""
    E, n = np.shape(mask)
    g = Geometry(kind=RING, shape=(n,), length=(float(n),), axes=("i",), units="grid points")
    m = torch.as_tensor(mask)
    obs = Observations(values=torch.where(m, torch.as_tensor(np.nan_to_num(y)), 0.0),
                       sigma=torch.full((E, n), float(sigma), dtype=torch.float64),
                       positions=torch.arange(n, dtype=torch.float64).expand(E, n).unsqueeze(-1), valid=m)
    return AnalysisProblem(background=torch.as_tensor(np.asarray(xb, dtype=np.float64)), obs=obs,
                           H=ObservationOperator(FieldMap(g)), geometry=g, var="x", batch_dims=("b",),
                           batch_shape=(E,))


def test_var3d_cg_equals_kalman_update_per_experiment():
    rng = np.random.default_rng(1)
    n, E = 10, 4
    B = _spd(n, rng)
    xb, y = rng.standard_normal((E, n)), rng.standard_normal((E, n))
    mask = rng.random((E, n)) < 0.6
    scale = np.array([0.5, 1.0, 2.0, 0.1])
    prob = _ring_problem(xb, y, mask)
    xa, _ = var3d_analysis(prob, StateCovariance(B), torch.as_tensor(scale), prob.obs.rinv(), tol=1e-12)
    for e in range(E):
        ref, _ = _kalman(xb[e], y[e], mask[e], scale[e] * B)
        np.testing.assert_allclose(xa[e].numpy(), ref, atol=1e-9)


def test_climatological_oi_is_the_kalman_update_of_the_mean_for_any_mask():
    rng = np.random.default_rng(2)
    n, E = 12, 5
    B = _spd(n, rng)
    mean = rng.standard_normal(n)
    y = rng.standard_normal((E, n))
    mask = rng.random((E, n)) < 0.5
    mask[0] = True
    sigma2 = 0.3
    xa = climatological_oi(torch.as_tensor(mean), torch.as_tensor(B), torch.as_tensor(np.where(mask, y, 0.0)),
                           torch.as_tensor(mask / sigma2))
    for e in range(E):
        np.testing.assert_allclose(xa[e].numpy(), _kalman(mean, y[e], mask[e], B, np.sqrt(sigma2))[0], atol=1e-10)


def test_etkf_matches_kalman_filter_of_the_ensemble_and_keeps_the_mean():
    rng = np.random.default_rng(2)
    n, M = 6, 9
    X = rng.standard_normal((1, M, n)) * 2 + 1
    y = rng.standard_normal((1, n))
    mask = np.array([[True, False, True, True, False, True]])
    infl = 1.1
    prob = _ring_problem(X.mean(1), y, mask)
    Xa = etkf_analysis(torch.as_tensor(X), prob.obs.filled(), prob.obs.rinv(), prob.H,
                       torch.tensor([infl], dtype=torch.float64)).numpy()[0]
    Pb = infl**2 * np.cov(X[0].T)
    mean, Pa = _kalman(X[0].mean(0), y[0], mask[0], Pb)
    np.testing.assert_allclose(Xa.mean(0), mean, atol=1e-10)
    np.testing.assert_allclose(np.cov(Xa.T), Pa, atol=1e-10)


def test_letkf_without_localisation_is_the_etkf():
    rng = np.random.default_rng(3)
    B, M, n = 3, 7, 12
    X = torch.as_tensor(rng.standard_normal((B, M, n)))
    mask = rng.random((B, n)) < 0.5
    prob = _ring_problem(X.mean(1).numpy(), rng.standard_normal((B, n)), mask)
    rinv = prob.obs.rinv()
    infl = torch.full((B,), 1.05, dtype=torch.float64)
    huge = torch.full((B,), 1e9, dtype=torch.float64)  # the taper is 1 at every distance
    torch.testing.assert_close(letkf_analysis(prob, X, infl, huge, rinv),
                               etkf_analysis(X, prob.obs.filled(), rinv, prob.H, infl))


def test_gaspari_cohn_values():
    c = 3.0
    d = torch.tensor([0.0, c - 1e-9, c + 1e-9, 2 * c, 2.5 * c], dtype=torch.float64)
    g = gaspari_cohn(d, c)
    assert g[0] == 1.0 and g[3] == 0.0 and g[4] == 0.0
    assert abs(float(g[1] - g[2])) < 1e-7  # continuous at c
    assert abs(float(taper(torch.tensor(4.0, dtype=torch.float64), 4.0)) - np.exp(-0.5)) < 1e-9
    dist = periodic_distance(40)
    assert dist[0, 39] == 1 and dist[0, 20] == 20


def test_cold_start_ensemble_is_centred_on_the_climatological_oi_analysis():
    rng = np.random.default_rng(4)
    n = 8
    B = _spd(n, rng)
    mask = np.array([[True, True, False, True, False, True, True, False]])
    y = rng.standard_normal((1, n))
    prob = _ring_problem(np.zeros((1, n)), y, mask)
    X = posterior_draws(prob.background, prob.obs.filled(), prob.obs.rinv(), prob.H, StateCovariance(B), 4000,
                        seed=0).numpy()[0]
    mean, Pa = _kalman(np.zeros(n), y[0], mask[0], B)
    np.testing.assert_allclose(X.mean(0), mean, atol=1e-10)
    np.testing.assert_allclose(np.cov(X.T), Pa, atol=0.08)


# -- the cycling harness ----------------------------------------------------------------


def _toy_experiment(E=3, n=5, K=6, truth=None):
    g = Geometry(kind=RING, shape=(n,), length=(float(n),), axes=("i",), units="grid points")

    def make_problem(k, background, trials=None):
        return AnalysisProblem(background=background, obs=None, H=None, geometry=g, var="x", batch_dims=("exp",),
                               batch_shape=(E,), cycle=k)

    return cycling.CyclingExperiment(background0=torch.zeros(E, n, dtype=torch.float64), make_problem=make_problem,
                                     forecast=lambda x: 2.0 * x + 1.0, n_cycles=K, exp_dims=("exp",), exp_shape=(E,),
                                     state_dims=("i",), truth=truth,
                                     error=None if truth is None else W.rmse_per_case)


def test_harness_forecasts_every_analysis_and_every_member():
    seen = []

    def predict(problem):
        xb = problem.background
        seen.append(xb.numpy().copy())
        if not problem.ensemble:
            xb = xb.unsqueeze(1).expand(-1, 4, -1)
        return problem.result(xb + 0.5)

    out = cycling.run(predict, _toy_experiment())
    x = out.x.values  # (exp, time, member, i)
    assert x.shape == (3, 6, 4, 5) and out.x.dtype == np.float32
    for k in range(1, 6):
        np.testing.assert_allclose(seen[k], 2.0 * x[:, k - 1] + 1.0, rtol=1e-6)
    assert not out.restarted.any()


def test_harness_restarts_a_blown_up_experiment_only():
    def predict(problem):
        x = problem.background.clone()
        if problem.cycle == 2:
            x[1] = np.nan
        return problem.result(x)

    out = cycling.run(predict, _toy_experiment(truth=lambda k: torch.zeros(3, 5, dtype=torch.float64)))
    assert out.restarted.values.sum() == 1 and bool(out.restarted[1, 2])
    assert np.isfinite(out.x.values).all() and (out.x.values[1, 2] == 0).all()
    assert out.error.shape == (3, 6)


def test_harness_rejects_a_malformed_analysis():
    import xarray as xr

    with pytest.raises(ValueError, match="dims"):
        cycling.run(lambda p: xr.Dataset({"x": p.result(p.background).x.rename(i="j")}), _toy_experiment())


def test_divergence_and_blocks():
    r = np.ones((2, 100))
    r[1, 40:] = 10.0
    first = metrics.divergence_cycles(r, threshold=3.0, window=5)
    assert first[0] == 100 and 40 <= first[1] <= 45
    restarted = np.zeros((2, 100), dtype=bool)
    restarted[0, 70] = True  # a restart counts as diverged
    assert metrics.divergence_cycles(r, 3.0, 5, restarted)[0] == 70
    blocks = metrics.time_blocks(100, 20, 25)
    assert [(b.start, b.stop) for b in blocks] == [(20, 46), (46, 72), (72, 98)]


# -- challenges and methods on the tiny dataset ---------------------------------------


def _run(challenge, method_cls, root, **params):
    m = method_cls(config=method_cls.make_config(params), seed=0, device="cpu", progress=False)
    m.fit(challenge.split("tiny", "train", root), challenge.split("tiny", "val", root))
    pred = challenge.run(m, "tiny", root)
    pred = check(pred, challenge.template("tiny", root), optional_dims=challenge.optional_dims,
                 optional_vars=challenge.optional_vars)
    return m, {k: s.value for k, s in challenge.score(pred, "tiny", root).items()}


def test_l96_da_cases_and_truth(root):
    ch = L96DA()
    test = ch.case_data("tiny", "test", root)
    assert set(np.unique(test.density.values)) == set(ch.densities)
    n_obs = test.obs_mask.sum("i").values
    assert set(np.unique(n_obs)) == {40, 20, 10, 4}
    assert np.isnan(test.y.where(~test.obs_mask)).all()
    bg_rmse = float(np.sqrt(((test.background - test.x_true) ** 2).mean()))
    assert 0.6 < bg_rmse < 1.2  # 48 h forecast from a 0.4-perturbed truth
    s = ch.score(check(ch.truth("tiny", root), ch.template("tiny", root)), "tiny", root)
    assert s["rmse"].value == 0 and s["gain"].value == 1 and s["mu"].value == 1
    # a second construction gives the same bytes (seeded)
    again = L96DA().case_data("tiny", "test", root)
    np.testing.assert_array_equal(again.background.values, test.background.values)


def test_l96_da_methods(root):
    ch = L96DA()
    _, bg = _run(ch, Background, root)
    assert bg["gain"] == 0
    m, v = _run(ch, Var3D, root)
    assert v["gain"] > 0.05 and v["rmse_obs100"] < v["rmse_obs10"] < bg["rmse"]
    assert 0.25 <= m.scale <= 4.0 and "background errors" in m.describe()["B"]
    assert m.tuning["mode"] == "batched" and len(m.tuning["trials"]) == 9
    _, c = _run(ch, Climatology, root)
    assert 3.2 < c["rmse"] < 4.0 and abs(c["mu"]) < 0.05
    _, p = _run(ch, Persistence, root)
    assert p["rmse_obs10"] < p["rmse_obs100"]  # mostly background at 10 %, the obs (sigma 1) at 100 %


def test_l96_fc48_reference_rows_and_default_forecast(root):
    ch = L96Fc48()
    refs = ch.references("tiny", root)
    tmpl = ch.template("tiny", root)
    truth_row = ch.score(check(refs["forecast-from-truth"][0], tmpl), "tiny", root)
    assert truth_row["rmse_48h"].value < 1e-10 and truth_row["acc_48h"].value > 0.999999
    bg_row = ch.score(check(refs["forecast-from-background"][0], tmpl), "tiny", root)
    assert bg_row["rmse_48h"].value > bg_row["rmse_0h"].value
    _, v = _run(ch, Var3D, root)
    assert v["rmse_0h"] < bg_row["rmse_0h"].value and v["rmse_48h"] < bg_row["rmse_48h"].value
    _, p = _run(ch, Persistence, root)
    assert p["rmse_48h"] > bg_row["rmse_48h"].value


def test_l96_cycle_floors(root):
    ch = L96Cycle()
    _, c = _run(ch, Climatology, root)
    assert 3.3 < c["rmse"] < 4.0
    _, p = _run(ch, Persistence, root)
    assert 0.9 < p["rmse"] < 1.1 and p["divergence"] == 0  # every variable observed: the obs themselves
    _, b = _run(ch, Background, root)
    assert b["rmse"] > 4.0 and b["divergence"] == 1  # free run from the cold start
    _, o = _run(ch, ClimOI, root)
    assert 0.85 < o["rmse"] < 1.05  # climatological OI, Sakov & Oke (2008): 0.95


def test_l96_cycle_3dvar_and_enkf_reach_literature_levels(root):
    ch = L96Cycle()
    m, v = _run(ch, Var3D, root)
    assert 0.35 < v["rmse"] < 0.55 and v["divergence"] == 0  # Sakov & Oke setup: 0.41
    assert 0.005 < m.scale < 0.2
    m, e = _run(ch, EnKF, root, inflation_grid=(1.02, 1.04))
    assert 0.12 < e["rmse"] < 0.26 and e["divergence"] == 0  # ETKF N=24: 0.18
    assert 0.7 < e["spread_skill"] < 1.5 and e["crps"] < v["crps"]


def test_l96_cycle_letkf_and_sparse_moving_network(root):
    _, v = _run(L96Cycle(), LETKF, root, inflation_grid=(1.04,), radius_grid=(4.0,))
    assert 0.14 < v["rmse"] < 0.32 and v["divergence"] == 0  # LETKF N=8: ~0.2
    ch = L96Cycle(obs_fraction=0.5, network="moving")
    mask = ch.split_data("tiny", "test", root).obs_mask.values
    assert (mask.sum(-1) == 20).all() and not (mask[:, 1:] == mask[:, :-1]).all()
    _, s = _run(ch, Var3D, root)
    assert 0.4 < s["rmse"] < 2.5
