"""Closure scores: R², correlation, Wasserstein-1, spectral RMSE and the Ross et al. similarity."""

import numpy as np
import pytest
import scipy.stats
import xarray as xr

import metrics
from metrics.spectral import isotropic_spectrum


def sample(n=5000, loc=0.0, scale=1.0, seed=0):
    return xr.DataArray(np.random.default_rng(seed).normal(loc, scale, (n // 50, 50)), dims=("t", "i"))


def test_r2_and_correlation():
    truth = sample()
    assert metrics.r2(truth, truth) == 1.0
    assert metrics.r2(xr.full_like(truth, float(truth.mean())), truth) == pytest.approx(0.0, abs=1e-12)
    assert metrics.r2(-truth, truth) < 0
    assert metrics.correlation(2 * truth + 1, truth) == pytest.approx(1.0)
    assert metrics.correlation(-truth, truth) == pytest.approx(-1.0)
    noisy = truth + sample(seed=1)
    assert metrics.correlation(noisy, truth) == pytest.approx(np.corrcoef(noisy.values.ravel(), truth.values.ravel())[0, 1])
    per_t = metrics.r2(noisy, truth, dim="i")
    assert per_t.dims == ("t",)


def test_wasserstein1():
    a, b = sample(), sample(seed=1) + 0.7
    assert metrics.wasserstein1(a, a) == 0.0
    assert metrics.wasserstein1(a, a + 0.7) == pytest.approx(0.7)
    assert metrics.wasserstein1(a, b) == pytest.approx(scipy.stats.wasserstein_distance(a.values.ravel(), b.values.ravel()))
    assert metrics.wasserstein1(a.where(a > 0), a.where(a > 0)) == 0.0
    assert np.isnan(metrics.wasserstein1(a * np.nan, a))


def test_spectral_rmse():
    rng = np.random.default_rng(2)
    f = xr.DataArray(rng.standard_normal((3, 32, 32)), dims=("time", "y", "x"))
    sa, sb = isotropic_spectrum(f), isotropic_spectrum(2 * f)
    assert metrics.spectral_rmse(sa, sa) == 0.0
    assert metrics.spectral_rmse(sa, sb) == pytest.approx(float(np.sqrt(((3 * sa) ** 2).mean())))
    kmax = float(sa.wavenumber[10])
    assert metrics.spectral_rmse(sa, sb, kmax=kmax) == pytest.approx(float(np.sqrt(((3 * sa[:10]) ** 2).mean())))
    with pytest.raises(ValueError):
        metrics.spectral_rmse(sa, sa.assign_coords(wavenumber=sa.wavenumber * 2))


def test_similarity_truth_baseline_worse():
    truth, baseline = sample(seed=3), sample(seed=4, scale=2.0)
    worse = sample(seed=5, scale=4.0)
    assert metrics.similarity(truth, baseline, truth) == 1.0
    assert metrics.similarity(baseline, baseline, truth) == 0.0
    assert metrics.similarity(worse, baseline, truth) < 0
    between = metrics.similarity(sample(seed=6, scale=1.5), baseline, truth)
    assert 0 < between < 1
    assert metrics.similarity(0.2, 0.8) == pytest.approx(0.75)
    assert np.isnan(metrics.similarity(0.2, 0.0))


def test_similarity_summary_over_metrics():
    field = xr.DataArray(np.random.default_rng(7).standard_normal((16, 16)), dims=("y", "x"))
    truth = {"q": sample(seed=3), "spec": isotropic_spectrum(field)}
    model = {"q": sample(seed=8, scale=1.2), "spec": truth["spec"] * 1.5}
    base = {"q": sample(seed=9, scale=2.0), "spec": truth["spec"] * 2.0}
    out = metrics.similarity(model, base, truth, distance={"q": metrics.wasserstein1, "spec": metrics.spectral_rmse})
    assert set(out) == {"per_metric", "mean", "min"}
    assert out["per_metric"]["spec"] == pytest.approx(0.5)
    assert out["min"] == min(out["per_metric"].values())
    assert out["mean"] == pytest.approx(np.mean(list(out["per_metric"].values())))
    from_distances = metrics.similarity({"a": 0.0, "b": 2.0}, {"a": 1.0, "b": 1.0})
    assert from_distances == {"per_metric": {"a": 1.0, "b": -1.0}, "mean": 0.0, "min": -1.0}


def test_numpy_and_dask_agree():
    truth = sample()
    pred = truth + 0.5 * sample(seed=1)
    pd_, td = pred.chunk({"t": 13}), truth.chunk({"i": 7})
    assert metrics.r2(pred, truth) == pytest.approx(metrics.r2(pd_, td), rel=1e-12)
    assert metrics.correlation(pred, truth) == pytest.approx(metrics.correlation(pd_, td), rel=1e-12)
    assert metrics.wasserstein1(pred, truth) == pytest.approx(metrics.wasserstein1(pd_, td), rel=1e-12)
    assert metrics.similarity(pred, 2 * pred, truth) == pytest.approx(metrics.similarity(pd_, 2 * pd_, td), rel=1e-12)
