"""Percentile bootstrap intervals over test cases."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import metrics
from metrics.bootstrap import resample_counts, resample_indices


def test_contains_point_estimate_and_is_deterministic():
    values = np.random.default_rng(0).gamma(2.0, 1.0, 50)
    lo, hi = metrics.bootstrap_ci(values)
    assert lo < values.mean() < hi
    assert (lo, hi) == metrics.bootstrap_ci(values)
    assert (lo, hi) != metrics.bootstrap_ci(values, seed=1)
    assert metrics.bootstrap_ci(xr.DataArray(values, dims="case")) == (lo, hi)
    lo90, hi90 = metrics.bootstrap_ci(values, alpha=0.1)
    assert lo <= lo90 < hi90 <= hi


def test_function_of_case_indices():
    num = np.random.default_rng(1).uniform(1, 2, 40)
    den = np.random.default_rng(2).uniform(2, 3, 40)
    ratio = lambda i: num[i].sum() / den[i].sum()  # noqa: E731
    lo, hi = metrics.bootstrap_ci(ratio, n_cases=40, n=500)
    assert lo < ratio(np.arange(40)) < hi
    assert metrics.bootstrap_ci(ratio, n_cases=40, n=500) == (lo, hi)
    with pytest.raises(ValueError):
        metrics.bootstrap_ci(ratio)


def test_mean_path_uses_same_draws_as_function_path():
    values = np.random.default_rng(3).standard_normal(30)
    assert metrics.bootstrap_ci(values, n=200, seed=4) == pytest.approx(
        metrics.bootstrap_ci(lambda i: values[i].mean(), n=200, seed=4, n_cases=30), rel=1e-12
    )
    counts = resample_counts(30, 200, 4)
    idx = resample_indices(30, 200, 4)
    assert (counts[7] == np.bincount(idx[7], minlength=30)).all()


def test_nan_and_empty_never_raise():
    assert np.isnan(metrics.bootstrap_ci([])).all()
    assert np.isnan(metrics.bootstrap_ci([np.nan, np.nan])).all()
    lo, hi = metrics.bootstrap_ci([1.0, np.nan, 3.0])
    assert 1.0 <= lo <= hi <= 3.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.integers(0, 2**32 - 1))
def test_properties(values, seed):
    lo, hi = metrics.bootstrap_ci(values, n=100, seed=seed)
    assert lo <= hi
    assert min(values) - 1e-6 <= lo and hi <= max(values) + 1e-6
    assert (lo, hi) == metrics.bootstrap_ci(values, n=100, seed=seed)
