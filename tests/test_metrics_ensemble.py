"""Fair CRPS, spread/skill ratio and rank histogram."""

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import metrics
from metrics.ensemble import _crps_fair


def gaussian_crps(mu, sigma, y):
    """Closed-form CRPS of N(mu, sigma²) at y (Gneiting & Raftery 2007)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * scipy.stats.norm.cdf(z) - 1) + 2 * scipy.stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def calibrated(n_points=4000, m=10, seed=0, spread=1.0):
    """Truth and members exchangeable draws from N(c_i, 1), members scaled by `spread` around c_i."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(0, 3, n_points)
    truth = xr.DataArray(centre + rng.standard_normal(n_points), dims=("point",))
    ens = xr.DataArray(centre[:, None] + spread * rng.standard_normal((n_points, m)), dims=("point", "member"))
    return ens, truth


def test_crps_matches_gaussian_closed_form():
    rng = np.random.default_rng(1)
    n, m = 200, 1000
    mu = rng.normal(0, 2, n)
    sigma = rng.uniform(0.5, 2.0, n)
    y = rng.normal(0, 3, n)
    ens = xr.DataArray(mu[:, None] + sigma[:, None] * rng.standard_normal((n, m)), dims=("case", "member"))
    obs = xr.DataArray(y, dims=("case",))
    got = metrics.crps(ens, obs)
    expect = gaussian_crps(mu, sigma, y).mean()
    assert got == pytest.approx(expect, rel=0.01)
    per_case = metrics.crps(ens, obs, dim=[])
    assert per_case.dims == ("case",)
    np.testing.assert_allclose(per_case.values, gaussian_crps(mu, sigma, y), rtol=0.1, atol=0.02)


def test_fair_crps_is_unbiased_for_small_ensembles():
    rng = np.random.default_rng(2)
    n, m = 40000, 4
    ens = xr.DataArray(rng.standard_normal((n, m)), dims=("case", "member"))
    obs = xr.DataArray(np.zeros(n), dims=("case",))
    assert metrics.crps(ens, obs) == pytest.approx(gaussian_crps(0.0, 1.0, 0.0), rel=0.02)


def test_crps_pair_term_against_brute_force():
    rng = np.random.default_rng(3)
    ens = rng.standard_normal((5, 7))
    y = rng.standard_normal(5)
    pairs = np.abs(ens[:, :, None] - ens[:, None, :]).sum(axis=(1, 2))
    brute = np.abs(ens - y[:, None]).mean(1) - pairs / (2 * 7 * 6)
    np.testing.assert_allclose(_crps_fair(ens, y), brute, rtol=1e-12)


def test_crps_single_member_is_absolute_error_and_nan_skipped():
    ens = xr.DataArray([[1.0], [np.nan], [4.0]], dims=("case", "member"))
    obs = xr.DataArray([0.0, 1.0, 1.0], dims=("case",))
    assert metrics.crps(ens, obs) == pytest.approx(2.0)


def test_spread_skill_calibrated_and_underdispersive():
    ens, truth = calibrated()
    ss = metrics.spread_skill(ens, truth)
    assert ss["ratio"] == pytest.approx(1.0, abs=0.04)
    assert ss["spread"] == pytest.approx(1.0, abs=0.03)
    narrow = metrics.spread_skill(*calibrated(spread=0.5))
    assert narrow["ratio"] < 0.7


def test_rank_histogram_flat_when_calibrated_u_shaped_when_not():
    ens, truth = calibrated(n_points=11000)
    counts = metrics.rank_histogram(ens, truth)
    assert counts.dims == ("rank",) and counts.sizes["rank"] == 11 and int(counts.sum()) == 11000
    assert scipy.stats.chisquare(counts.values).pvalue > 0.001
    narrow = metrics.rank_histogram(*calibrated(n_points=11000, spread=0.5))
    assert narrow.values[0] > 2 * narrow.values[5] and narrow.values[-1] > 2 * narrow.values[5]


def test_rank_histogram_ties_broken_at_random_deterministically():
    ens = xr.DataArray(np.zeros((3000, 4)), dims=("case", "member"))
    obs = xr.DataArray(np.zeros(3000), dims=("case",))
    h = metrics.rank_histogram(ens, obs, seed=1)
    assert (h == metrics.rank_histogram(ens, obs, seed=1)).all()
    assert h.values.min() > 500


def test_numpy_and_dask_agree():
    ens, truth = calibrated(n_points=600)
    ens = ens.where(ens > -6)
    ens_d, truth_d = ens.chunk({"point": 100, "member": 3}), truth.chunk({"point": 250})
    assert metrics.crps(ens, truth) == pytest.approx(metrics.crps(ens_d, truth_d), rel=1e-12)
    assert metrics.spread_skill(ens, truth) == pytest.approx(metrics.spread_skill(ens_d, truth_d), rel=1e-12)
    assert (metrics.rank_histogram(ens, truth) == metrics.rank_histogram(ens_d, truth_d)).all()


@settings(max_examples=30, deadline=None)
@given(
    arrays(np.float64, (3, 5), elements=st.floats(-100, 100)),
    arrays(np.float64, (3,), elements=st.floats(-100, 100)),
    st.permutations(range(5)),
)
def test_crps_properties(ens, obs, perm):
    e = xr.DataArray(ens, dims=("case", "member"))
    o = xr.DataArray(obs, dims=("case",))
    value = metrics.crps(e, o)
    assert value == pytest.approx(metrics.crps(e.isel(member=list(perm)), o), rel=1e-9, abs=1e-9)
    same = xr.DataArray(np.repeat(ens[:, :1], 5, axis=1), dims=("case", "member"))
    assert metrics.crps(same, o) == pytest.approx(float(np.abs(ens[:, 0] - obs).mean()), rel=1e-9, abs=1e-9)
