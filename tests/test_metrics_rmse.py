"""µ, σ, RMSE (ODC 2020a definitions) and their bootstrap intervals."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import metrics
from metrics.rmse import per_time_sums, score_by_time, scores_ci, scores_from_sums


def field(nt=30, ny=6, nx=8, seed=0):
    rng = np.random.default_rng(seed)
    coords = {"time": np.arange(nt, dtype=float), "y": np.arange(ny) * 10.0, "x": np.arange(nx) * 10.0}
    return xr.DataArray(rng.standard_normal((nt, ny, nx)), dims=("time", "y", "x"), coords=coords)


def odc2020a(pred, ref):
    """The 2020a expressions, verbatim in xarray."""
    score_t = 1.0 - np.sqrt(((pred - ref) ** 2).mean(("x", "y"))) / np.sqrt((ref**2).mean(("x", "y")))
    mu = 1.0 - np.sqrt(((pred - ref) ** 2).mean()) / np.sqrt((ref**2).mean())
    return float(mu), float(score_t.std())


def test_perfect_prediction():
    ref = field()
    out = metrics.scores(ref, ref)
    assert out == {"rmse": 0.0, "mu": 1.0, "sigma": 0.0}


def test_zero_prediction_mu_zero():
    ref = field()
    out = metrics.scores(xr.zeros_like(ref), ref)
    assert out["mu"] == pytest.approx(0.0, abs=1e-12)
    assert out["sigma"] == pytest.approx(0.0, abs=1e-12)
    assert out["rmse"] == pytest.approx(float(np.sqrt((ref**2).mean())))


def test_matches_2020a_expressions():
    ref = field()
    pred = ref + 0.3 * field(seed=1) * (1 + ref.time / 30)
    out = metrics.scores(pred, ref)
    mu, sigma = odc2020a(pred, ref)
    assert out["mu"] == pytest.approx(mu, rel=1e-12)
    assert out["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert out["rmse"] == pytest.approx(float(np.sqrt(((pred - ref) ** 2).mean())), rel=1e-12)
    assert sigma > 0.01


def test_masked_points_left_out_of_both_sums():
    ref = field()
    pred = ref + 0.5 * field(seed=2)
    mask = field(seed=3) > 1.0
    out = metrics.scores(pred.where(~mask), ref)
    out_ref_masked = metrics.scores(pred, ref.where(~mask))
    e2 = ((pred - ref) ** 2).where(~mask)
    r2 = (ref**2).where(~mask)
    assert out["mu"] == pytest.approx(1 - float(np.sqrt(e2.sum() / r2.sum())), rel=1e-12)
    assert out["rmse"] == pytest.approx(float(np.sqrt(e2.mean())), rel=1e-12)
    assert out == pytest.approx(out_ref_masked, rel=1e-12)


def test_all_masked_time_is_skipped_in_sigma():
    ref = field()
    pred = (ref + 0.5 * field(seed=2)).copy()
    pred[3] = np.nan
    full = metrics.scores(pred, ref)
    drop = metrics.scores(pred.drop_isel(time=3), ref.drop_isel(time=3))
    assert full == pytest.approx(drop, rel=1e-12)


def test_numpy_and_dask_agree():
    ref = field()
    pred = ref + 0.4 * field(seed=5)
    pred = pred.where(field(seed=6) < 1.5)
    a = metrics.scores(pred, ref)
    b = metrics.scores(pred.chunk({"time": 7, "y": 3}), ref.chunk({"time": 11}))
    assert a == pytest.approx(b, rel=1e-12)


def test_score_by_time_series():
    ref = field()
    pred = ref + 0.4 * field(seed=5)
    ts = score_by_time(pred, ref)
    expect = 1 - np.sqrt(((pred - ref) ** 2).mean(("x", "y"))) / np.sqrt((ref**2).mean(("x", "y")))
    np.testing.assert_allclose(ts.score.values, expect.values, rtol=1e-12)
    assert float(ts.score.std()) == pytest.approx(metrics.scores(pred, ref)["sigma"], rel=1e-12)


def test_dims_order_and_pooled_time():
    ref = field()
    pred = ref + 0.4 * field(seed=5)
    assert metrics.scores(pred.transpose("x", "time", "y"), ref) == pytest.approx(metrics.scores(pred, ref))
    pooled = metrics.scores(pred, ref, time=None)
    assert pooled["mu"] == pytest.approx(metrics.scores(pred, ref)["mu"], rel=1e-12)
    assert np.isnan(pooled["sigma"])


def test_scores_ci_matches_generic_bootstrap_and_contains_estimate():
    ref = field(nt=60)
    pred = ref + 0.4 * field(nt=60, seed=5) * (1 + ref.time / 60)
    sums = per_time_sums(pred, ref)
    point = scores_from_sums(sums)
    ci = scores_ci(sums, n=300, seed=3)
    for key in ("rmse", "mu", "sigma"):
        generic = metrics.bootstrap_ci(lambda i: scores_from_sums(sums, i)[key], n=300, seed=3, n_cases=60)
        assert ci[key] == pytest.approx(generic, rel=1e-9)
        assert ci[key][0] <= point[key] <= ci[key][1]
    assert scores_ci(sums, n=300, seed=3) == ci


@settings(max_examples=25, deadline=None)
@given(
    arrays(np.float64, (5, 3, 4), elements=st.floats(-1e3, 1e3)),
    arrays(np.float64, (5, 3, 4), elements=st.floats(-1e3, 1e3)),
    st.permutations(range(5)),
)
def test_properties_mu_at_most_one_and_time_permutation_invariance(p, r, perm):
    pred = xr.DataArray(p, dims=("time", "y", "x"))
    ref = xr.DataArray(r, dims=("time", "y", "x"))
    out = metrics.scores(pred, ref)
    if np.isfinite(out["mu"]):
        assert out["mu"] <= 1.0
    out_perm = metrics.scores(pred.isel(time=list(perm)), ref.isel(time=list(perm)))
    assert out_perm == pytest.approx(out, rel=1e-9, abs=1e-12, nan_ok=True)
