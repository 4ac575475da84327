"""RMSE and anomaly correlation per lead time."""

import numpy as np
import pytest
import xarray as xr

import metrics


def forecasts(n_case=20, n_lead=5, n=40, seed=0):
    rng = np.random.default_rng(seed)
    clim = xr.DataArray(rng.normal(5, 1, n), dims=("i",))
    truth = clim + xr.DataArray(rng.standard_normal((n_case, n_lead, n)), dims=("case", "lead", "i"))
    growth = xr.DataArray(0.2 * np.arange(n_lead), dims=("lead",))
    pred = truth + growth * xr.DataArray(rng.standard_normal((n_case, n_lead, n)), dims=("case", "lead", "i"))
    return pred.assign_coords(lead=np.arange(n_lead) * 6.0), truth.assign_coords(lead=np.arange(n_lead) * 6.0), clim


def test_rmse_by_lead_pooled_and_per_case():
    pred, truth, _ = forecasts()
    r = metrics.rmse_by_lead(pred, truth)
    assert r.dims == ("lead",) and r.values[0] == 0.0
    np.testing.assert_allclose(r.values, np.sqrt(((pred - truth) ** 2).mean(("case", "i"))).values, rtol=1e-12)
    per_case = metrics.rmse_by_lead(pred, truth, over="i")
    np.testing.assert_allclose(per_case.values, np.sqrt(((pred - truth) ** 2).mean("i")).mean("case").values, rtol=1e-12)
    assert np.all(np.diff(r.values) > 0)


def test_acc_perfect_opposite_and_definition():
    pred, truth, clim = forecasts()
    acc = metrics.acc_by_lead(pred, truth, clim, over="i")
    assert acc.values[0] == pytest.approx(1.0) and np.all(np.diff(acc.values) < 0)
    anti = metrics.acc_by_lead(2 * clim - truth, truth, clim)
    np.testing.assert_allclose(anti.values, -1.0)
    fa, ta = pred - clim, truth - clim
    expect = ((fa * ta).sum("i") / np.sqrt((fa**2).sum("i") * (ta**2).sum("i"))).mean("case")
    np.testing.assert_allclose(acc.values, expect.values, rtol=1e-12)


def test_acc_centered_equals_pearson_of_anomalies():
    pred, truth, clim = forecasts()
    acc = metrics.acc_by_lead(pred + 3.0, truth, clim, over="i", centered=True)
    expect = xr.corr(pred - clim, truth - clim, dim="i").mean("case")
    np.testing.assert_allclose(acc.values, expect.values, rtol=1e-10)


def test_acc_of_climatology_forecast_is_nan_not_error():
    _, truth, clim = forecasts()
    acc = metrics.acc_by_lead(xr.broadcast(clim, truth)[0], truth, clim, over="i")
    assert np.isnan(acc.values).all()


def test_numpy_and_dask_agree_with_nans():
    pred, truth, clim = forecasts()
    pred = pred.where(pred > 3.0)
    pd_, td = pred.chunk({"case": 7}), truth.chunk({"lead": 2})
    np.testing.assert_allclose(metrics.rmse_by_lead(pred, truth).values, metrics.rmse_by_lead(pd_, td).values, rtol=1e-12)
    np.testing.assert_allclose(
        metrics.acc_by_lead(pred, truth, clim, over="i").values,
        metrics.acc_by_lead(pd_, td, clim.chunk(), over="i").values,
        rtol=1e-12,
    )
