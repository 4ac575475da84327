"""Spectral effective resolution: λx, λt (ODC 2020a recipe), isotropic λ, edge cases, dask."""

import numpy as np
import pytest
import xarray as xr

import metrics
from metrics.spectral import score_spectrum, spacetime_psd, spacetime_resolution, spectral_resolution_ci

NT, NY, NX, DX = 365, 6, 128, 5.0


def red_field(nt=NT, ny=NY, nx=NX, dx=DX, seed=0):
    """Periodic (time, y, x) random field with a red spectrum in space and time, daily, km."""
    rng = np.random.default_rng(seed)
    shape = (nt, ny, nx)
    spec = np.fft.rfftn(rng.standard_normal(shape), axes=(0, 1, 2))
    f = np.fft.fftfreq(nt)[:, None, None]
    k2 = np.fft.fftfreq(ny)[None, :, None] ** 2 + np.fft.rfftfreq(nx)[None, None, :] ** 2
    amp = (1.0 / nx**2 + k2) ** (-0.75) * (1.0 / nt**2 + f**2) ** (-0.5)
    a = np.fft.irfftn(spec * amp, s=shape, axes=(0, 1, 2))
    coords = {"time": np.arange(nt, dtype=float), "y": np.arange(ny) * dx, "x": np.arange(nx) * dx}
    return xr.DataArray(a / a.std(), dims=("time", "y", "x"), coords=coords)


def lowpass(da, dim, m):
    """Sharp spectral cutoff: keep Fourier modes |index| <= m along dim (periodic)."""
    ax = da.get_axis_num(dim)
    f = np.fft.rfft(da.values, axis=ax)
    sl = [slice(None)] * da.ndim
    sl[ax] = slice(m + 1, None)
    f[tuple(sl)] = 0
    return da.copy(data=np.fft.irfft(f, n=da.sizes[dim], axis=ax))


@pytest.fixture(scope="module")
def ref():
    return red_field()


def test_perfect_prediction_all_resolved(ref):
    out = metrics.spectral_resolution(ref, ref)
    assert out["lambda_x"] == 2 * DX and out["lambda_t"] == 2.0
    assert out["flags"] == {"lambda_x": "all_resolved", "lambda_t": "all_resolved"}
    assert np.all(out["score"].values == 1.0)


def test_zero_prediction_unresolved(ref):
    out = metrics.spectral_resolution(xr.zeros_like(ref), ref)
    assert out["lambda_x"] == NX * DX and out["lambda_t"] == NT * 1.0
    assert out["flags"] == {"lambda_x": "unresolved", "lambda_t": "unresolved"}


@pytest.mark.parametrize("m", [6, 16, 30])
def test_lowpass_in_x_gives_cutoff_wavelength(ref, m):
    out = metrics.spectral_resolution(lowpass(ref, "x", m), ref)
    # cutoff between modes m and m+1: index m + 1/2; one spectral bin of tolerance
    assert abs(NX * DX / out["lambda_x"] - (m + 0.5)) <= 1.0
    assert out["flags"]["lambda_x"] == "ok"
    # every period is resolved at large x-scales: λt is the smallest period on the grid
    assert out["lambda_t"] == pytest.approx(NT / ((NT - 1) // 2), rel=1e-9)


@pytest.mark.parametrize("m", [10, 40, 100])
def test_lowpass_in_time_gives_cutoff_period(ref, m):
    out = metrics.spectral_resolution(lowpass(ref, "time", m), ref)
    assert abs(NT / out["lambda_t"] - (m + 0.5)) <= 1.0
    assert out["lambda_x"] == pytest.approx(NX * DX / ((NX - 1) // 2), rel=1e-9)


def test_contour_matches_matplotlib(ref):
    """λ = min over vertices of matplotlib's 0.5 contour of S on (1/k, 1/f) axes (2020a)."""
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    pred = lowpass(lowpass(ref, "x", 20), "time", 50) + 0.05 * red_field(seed=9)
    out = metrics.spectral_resolution(pred, ref)
    s = out["score"]
    fig = plt.figure()
    cs = plt.contour(s["wavelength_x"].values, s["wavelength_time"].values, s.values, [0.5])
    verts = np.concatenate([p.vertices for p in cs.get_paths()])
    plt.close(fig)
    assert out["lambda_x"] == pytest.approx(verts[:, 0].min(), rel=1e-12)
    assert out["lambda_t"] == pytest.approx(verts[:, 1].min(), rel=1e-12)


def test_score_is_ratio_of_row_averaged_spectra(ref):
    pred = 0.7 * ref + 0.2 * red_field(seed=4)
    psd = spacetime_psd(pred, ref)
    s = spacetime_resolution(psd)["score"]
    expect = 1 - psd.psd_err.mean("y") / psd.psd_ref.mean("y")
    np.testing.assert_allclose(s.values, expect.values, rtol=1e-12)
    assert psd.sizes == {"y": NY, "freq_time": (NT - 1) // 2, "freq_x": (NX - 1) // 2}
    assert float(psd.freq_x.min()) > 0 and float(psd.freq_time.min()) > 0


def test_numpy_and_dask_agree(ref):
    pred = lowpass(ref, "x", 12) + 0.1 * red_field(seed=3)
    a = metrics.spectral_resolution(pred, ref)
    b = metrics.spectral_resolution(pred.chunk({"y": 2}), ref.chunk({"y": 4, "time": 100}))
    assert a["lambda_x"] == pytest.approx(b["lambda_x"], rel=1e-12)
    assert a["lambda_t"] == pytest.approx(b["lambda_t"], rel=1e-12)
    np.testing.assert_allclose(a["score"].values, b["score"].values, rtol=1e-10)


def test_several_avg_dims_and_transposed_input(ref):
    both = xr.concat([ref, red_field(seed=1)], dim="traj")
    pred = 0.8 * both
    a = metrics.spectral_resolution(pred, both, avg=("traj", "y"))
    b = metrics.spectral_resolution(pred.transpose("x", "traj", "y", "time"), both, avg=("y", "traj"))
    assert a["lambda_x"] == b["lambda_x"] and a["flags"]["lambda_x"] == "all_resolved"
    with pytest.raises(ValueError, match="extra"):
        metrics.spectral_resolution(pred, both, avg="y")


def test_nan_and_constant_inputs_never_raise(ref):
    pred = ref.copy()
    pred[0, 0, 0] = np.nan
    out = metrics.spectral_resolution(pred, ref)
    assert np.isnan(out["lambda_x"]) and out["flags"]["lambda_x"] == "nan_input"
    const = xr.ones_like(ref)
    out = metrics.spectral_resolution(const, const)
    assert np.isnan(out["lambda_t"]) and out["flags"]["lambda_t"] == "undefined"


def test_datetime_time_axis_in_days(ref):
    dated = ref.assign_coords(time=np.datetime64("2012-10-01") + np.arange(NT) * np.timedelta64(1, "D"))
    out = metrics.spectral_resolution(xr.zeros_like(dated), dated)
    assert out["lambda_t"] == NT


def test_linear_detrend_removes_a_plane_per_row():
    t = np.arange(50.0)[:, None, None]
    x = np.arange(16.0)[None, None, :]
    y = np.arange(3.0)[None, :, None]
    planes = xr.DataArray((3 + y) + 0.2 * (y - 1) * t - 0.5 * y * x, dims=("time", "y", "x"))
    psd = spacetime_psd(planes, xr.zeros_like(planes), detrend="linear")
    assert float(np.abs(psd.psd_err).max()) < 1e-18
    assert float(spacetime_psd(planes, xr.zeros_like(planes)).psd_err.max()) > 1.0


def test_bootstrap_interval_over_rows(ref):
    psd = spacetime_psd(lowpass(ref, "x", 16), ref)
    point = spacetime_resolution(psd)
    ci = spectral_resolution_ci(psd, "y", n=200, seed=1)
    assert ci == spectral_resolution_ci(psd, "y", n=200, seed=1)
    for key in ("lambda_x", "lambda_t"):
        assert ci[key][0] <= point[key] <= ci[key][1]
    assert ci != spectral_resolution_ci(psd, "y", n=200, seed=2)


def test_score_spectrum_1d(ref):
    s1 = score_spectrum(ref, ref, "x")
    s0 = score_spectrum(xr.zeros_like(ref), ref, "x")
    assert np.allclose(s1.values, 1.0) and np.allclose(s0.values, 0.0)
    half = score_spectrum(0.5 * ref, ref, "time", window=False)
    assert np.allclose(half.values, 0.75)
    assert half.dims == ("freq_time",) and "wavelength_time" in half.coords


def iso_field(nt=8, n=64, dx=10.0, seed=1):
    rng = np.random.default_rng(seed)
    spec = np.fft.rfftn(rng.standard_normal((nt, n, n)), axes=(1, 2))
    kk = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :])
    amp = (1.0 / n**2 + kk**2) ** (-0.75)
    coords = {"time": np.arange(nt, dtype=float), "y": np.arange(n) * dx, "x": np.arange(n) * dx}
    mk = lambda a: xr.DataArray(np.fft.irfftn(a, s=(n, n), axes=(1, 2)), dims=("time", "y", "x"), coords=coords)  # noqa: E731
    return spec * amp, kk * n, mk


@pytest.mark.parametrize("m", [4, 10, 25])
def test_isotropic_lowpass_gives_cutoff(m):
    spec, ring, mk = iso_field()
    ref, pred = mk(spec), mk(spec * (np.rint(ring) <= m))
    out = metrics.isotropic_resolution(pred, ref)
    assert out["flags"]["lambda_iso"] == "ok"
    # sharp ring cutoff: S = 1 up to ring m, 0 beyond; log-midpoint of rings m and m+1
    assert out["lambda_iso"] == pytest.approx(640.0 / np.sqrt(m * (m + 1)), rel=1e-9)


def test_isotropic_edge_cases_and_dask():
    spec, _, mk = iso_field()
    ref = mk(spec)
    perfect = metrics.isotropic_resolution(ref, ref)
    assert perfect["lambda_iso"] == 20.0 and perfect["flags"]["lambda_iso"] == "all_resolved"
    zero = metrics.isotropic_resolution(xr.zeros_like(ref), ref)
    assert zero["lambda_iso"] == 640.0 and zero["flags"]["lambda_iso"] == "unresolved"
    pred = ref + 0.3 * mk(iso_field(seed=5)[0])
    a = metrics.isotropic_resolution(pred, ref)
    b = metrics.isotropic_resolution(pred.chunk({"time": 3}), ref.chunk({"time": 5}))
    assert a["lambda_iso"] == pytest.approx(b["lambda_iso"], rel=1e-12)


def test_isotropic_spectrum_parseval():
    spec, _, mk = iso_field(nt=4)
    f = mk(spec)
    e = metrics.spectral.isotropic_spectrum(f)
    dk = float(e.wavenumber[0])
    variance = float(((f - f.mean(("x", "y"))) ** 2).mean())
    assert float(e.sum()) * dk == pytest.approx(variance, rel=0.02)


def test_fold_adds_the_other_propagation_direction():
    t = np.arange(120.0)[:, None, None]
    x = np.arange(32.0)[None, None, :]
    y = np.arange(2.0)[None, :, None]
    east = xr.DataArray(np.cos(2 * np.pi * (4 * x / 32 - 10 * t / 120) + y), dims=("time", "y", "x"))
    west = xr.DataArray(np.cos(2 * np.pi * (4 * x / 32 + 10 * t / 120) + y), dims=("time", "y", "x"))
    zero = xr.zeros_like(east)
    pe = spacetime_psd(east, zero, window=False)
    pw = spacetime_psd(west, zero, window=False)
    pf = spacetime_psd(east, zero, window=False, fold=True)
    assert float(pe.psd_err.max()) < 1e-12 * float(pw.psd_err.max())
    assert float(pf.psd_err.sel(freq_time=10 / 120, freq_x=4 / 32, method="nearest").mean()) == pytest.approx(
        float(pw.psd_err.max())
    )
    mixed = xr.DataArray(np.random.default_rng(0).standard_normal((120, 2, 32)), dims=("time", "y", "x"))
    full = np.abs(np.fft.fft2(mixed.values - mixed.values.mean(axis=(0, 2), keepdims=True), axes=(0, 2))) ** 2
    folded = spacetime_psd(mixed, xr.zeros_like(mixed), window=False, fold=True).psd_err
    expect = full[1:60, :, 1:16] + full[:-60:-1, :, 1:16]
    np.testing.assert_allclose(folded.transpose("freq_time", "y", "freq_x").values, expect, rtol=1e-10)
