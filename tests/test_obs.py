"""Observing systems: exact spectral sampling, track geometry on the periodic domain, determinism."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from data_scripts import obs

L, W = 1.0e6, 8.0e5  # metres, a non-square domain


def _grid(nx, ny, Lx=L, Wy=W):
    x = (np.arange(nx) + 0.5) * Lx / nx
    y = (np.arange(ny) + 0.5) * Wy / ny
    Y, X = np.meshgrid(y, x, indexing="ij")
    return X, Y


@pytest.mark.parametrize("nx,ny", [(32, 24), (17, 15), (16, 9)])
def test_sample_spectral_exact_at_grid_points(nx, ny):
    f = torch.randn(3, ny, nx, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X, Y = _grid(nx, ny)
    v = obs.sample_spectral(torch.fft.rfft2(f), torch.from_numpy(X.ravel()), torch.from_numpy(Y.ravel()), L, W, nx, ny)
    assert v.shape == (3, nx * ny) and v.dtype == torch.float64
    torch.testing.assert_close(v, f.reshape(3, -1), rtol=0, atol=1e-12)
    # per-field points, numpy in -> numpy out, single field
    pts = np.stack([X.ravel()] * 3), np.stack([Y.ravel()] * 3)
    torch.testing.assert_close(obs.sample_spectral(torch.fft.rfft2(f), *pts, L, W, nx, ny, chunk=50),
                               f.reshape(3, -1), rtol=0, atol=1e-12)
    vn = obs.sample_field(f[0].numpy(), X.ravel(), Y.ravel(), L, W)
    assert isinstance(vn, np.ndarray) and vn.shape == (nx * ny,)
    np.testing.assert_allclose(vn, f[0].numpy().ravel(), rtol=0, atol=1e-12)


def test_sample_spectral_exact_for_band_limited_field_off_grid():
    """Trigonometric polynomial resolved by a 32 x 24 grid, incl. both Nyquist modes as cosines."""
    nx, ny = 32, 24
    kx, ly = 2 * math.pi / L, 2 * math.pi / W
    dx, dy = L / nx, W / ny

    def f(x, y):
        return (np.cos(3 * kx * x + 0.3) * np.sin(5 * ly * y) + 0.5 * np.cos(15 * kx * x - 1.0)
                + 0.2 * np.sin(2 * kx * x - 11 * ly * y) + 0.7
                + 0.3 * np.cos(16 * kx * (x - dx / 2)) + 0.4 * np.cos(12 * ly * (y - dy / 2)) * np.cos(4 * kx * x))

    X, Y = _grid(nx, ny)
    fh = torch.fft.rfft2(torch.from_numpy(f(X, Y))[None])
    rng = np.random.default_rng(1)
    x = rng.uniform(-2 * L, 3 * L, 2000)  # outside the domain too: periodic
    y = rng.uniform(-W, 2 * W, 2000)
    v = obs.sample_spectral(fh, x, y, L, W, nx, ny)
    np.testing.assert_allclose(v[0].numpy(), f(x, y), rtol=0, atol=1e-12)
    # float32 coefficients give float32 values, still accurate
    v32 = obs.sample_spectral(fh.to(torch.complex64), x, y, L, W, nx, ny)
    assert v32.dtype == torch.float32
    np.testing.assert_allclose(v32[0].numpy(), f(x, y), rtol=0, atol=1e-4)


def test_sample_spectral_differentiable_and_validates():
    nx = ny = 8
    fh = torch.fft.rfft2(torch.randn(1, ny, nx, dtype=torch.float64)).requires_grad_()
    x = torch.rand(5, dtype=torch.float64) * L
    obs.sample_spectral(fh, x, x, L, L, nx, ny).sum().backward()
    assert fh.grad is not None and torch.isfinite(fh.grad.abs()).all()
    with pytest.raises(ValueError):
        obs.sample_spectral(fh.detach(), x, x, L, L, nx + 2, ny)


def _pass_groups(p):
    """Split positions into passes (one pass per distinct time for a single satellite)."""
    return [(t, p["x"][p["time"] == t], p["y"][p["time"] == t]) for t in np.unique(p["time"])]


def _line_steps(x, y):
    """Minimal-image displacement between consecutive along-track points (sorted by y)."""
    o = np.argsort(y)
    dx, dy = np.diff(x[o]), np.diff(y[o])
    return (dx + L / 2) % L - L / 2, dy


def test_nadir_tracks_geometry_counts_and_advance():
    day = 86400.0
    times = np.arange(0.0, 20 * day, 6 * 3600.0)
    p = obs.positions("nadir1", times, L, W, seed=3)
    for k in ("time", "x", "y"):
        assert p[k].dtype == np.float64 and p[k].shape == p["time"].shape
    assert np.all((p["x"] >= 0) & (p["x"] < L) & (p["y"] >= 0) & (p["y"] < W))
    assert np.all(np.isin(p["time"], times)) and np.all(np.diff(p["time"]) >= 0)
    # 1000 km / 250 km = 4 tracks per direction, 10-day repeat: one pass every 1.25 days
    passes = _pass_groups(p)
    assert len(passes) == 16
    gaps = np.diff([t for t, _, _ in passes]) / day
    assert np.all(np.abs(gaps - 1.25) <= 0.25 + 1e-9)  # pass times snapped to 6-hourly times
    a = math.radians(77.0)
    n_per_pass = math.ceil(W / (6e3 * math.sin(a)) - 0.5)
    intercepts, angles = [], []
    wrapped = 0
    for i, (t, x, y) in enumerate(passes):
        assert x.size == n_per_pass
        dx, dy = _line_steps(x, y)
        # straight line at 77 deg (ascending) or 103 deg (descending), 6 km spacing, across the x seam
        ang = np.degrees(np.arctan2(dy, dx))
        assert np.ptp(ang) < 1e-6 and min(abs(ang[0] - 77.0), abs(ang[0] - 103.0)) < 1e-6
        angles.append(ang[0])
        np.testing.assert_allclose(np.hypot(dx, dy), 6e3, rtol=1e-9)
        wrapped += np.any(np.abs(np.diff(x[np.argsort(y)])) > L / 2)
        intercepts.append((x[np.argmin(y)] - y.min() / math.tan(np.radians(ang[0]))) % L)
    assert wrapped > 0
    assert np.all(np.abs(np.diff(angles)) > 25.0)  # passes alternate ascending / descending
    # consecutive passes of the same direction advance by one track spacing (L / 4)
    for k in range(2, len(intercepts)):
        shift = (intercepts[k] - intercepts[k - 2]) % L
        assert min(abs(shift - L / 4), abs(shift - L / 4 - L)) < 1.0, shift
    # exact repeat after 10 days
    np.testing.assert_allclose(intercepts[8:], intercepts[:-8], atol=1e-3)


def test_nadir4_and_determinism():
    day = 86400.0
    times = np.arange(0.0, 10 * day, 3600.0)
    p1 = obs.positions("nadir1", times, L, W, seed=5)
    p4 = obs.positions("nadir4", times, L, W, seed=5)
    assert abs(p4["x"].size - 4 * p1["x"].size) <= 4 * 137
    again = obs.positions("nadir4", times, L, W, seed=5)
    for k in ("time", "x", "y"):
        np.testing.assert_array_equal(again[k], p4[k])
    other = obs.positions("nadir4", times, L, W, seed=6)
    assert other["x"].size != p4["x"].size or not np.array_equal(other["x"], p4["x"])
    # units: the same pattern in km and days
    pk = obs.positions("nadir1", times / day, L / 1e3, W / 1e3, seed=5, km=1.0, day=1.0)
    np.testing.assert_allclose(pk["x"] * 1e3, p1["x"], atol=1e-6)
    np.testing.assert_allclose(pk["time"] * day, p1["time"], atol=1e-6)


def test_swath_geometry_and_coverage():
    """Pixels lie 10-60 km from their own nadir track; one repeat cycle covers most of the domain."""
    day = 86400.0
    Ls = 1.0e6
    times = np.arange(0.0, 21 * day, day)
    kw = dict(track_spacing_km=110.0, repeat_days=21.0)
    sw = obs.positions("swath", times, Ls, Ls, seed=9, pixel_km=4.0, **kw)
    nd = obs.positions("nadir1", times, Ls, Ls, seed=9, spacing_km=0.5, **kw)
    assert np.all((sw["x"] >= 0) & (sw["x"] < Ls) & (sw["y"] >= 0) & (sw["y"] < Ls))
    n_pass = np.unique(sw["time"]).size
    assert n_pass == np.unique(nd["time"]).size >= 15
    expected = 2 * round(50 / 4) * Ls / (4e3 * math.sin(math.radians(77.0)))
    assert abs(sw["x"].size / n_pass / expected - 1) < 0.02
    for t in np.unique(sw["time"])[:4]:
        s, n = sw["time"] == t, nd["time"] == t
        tree = cKDTree(np.c_[nd["x"][n], nd["y"][n]], boxsize=[Ls, Ls])
        d, _ = tree.query(np.c_[sw["x"][s], sw["y"][s]])
        # nearest sampled nadir point (0.5 km apart); pixels by the y seam whose foot point lies
        # beyond the seam sit up to 60 km x cos(77 deg) along-track from the track's end
        assert d.min() > 10e3 - 300 and d.max() < math.hypot(60e3, 60e3 * math.cos(math.radians(77.0))) + 300
    cells = np.unique((sw["x"] // 20e3).astype(int) * 1000 + (sw["y"] // 20e3).astype(int))
    assert cells.size / 50**2 > 0.9


def test_random_scenario_counts_fixed_and_determinism():
    times = np.arange(5.0)
    p = obs.positions("random", times, L, W, seed=1, n_grid=32 * 32, fraction=0.1)
    assert p["x"].size == 5 * 102
    assert np.all((p["x"] >= 0) & (p["x"] < L) & (p["y"] >= 0) & (p["y"] < W))
    np.testing.assert_array_equal(p["time"], np.repeat(times, 102))
    assert not np.array_equal(p["x"][:102], p["x"][102:204])
    f = obs.positions("random", times, L, W, seed=1, n=7, fixed=True)
    np.testing.assert_array_equal(f["x"][:7], f["x"][7:14])
    np.testing.assert_array_equal(obs.positions("random", times, L, W, seed=1, n_grid=1024, fraction=0.1)["x"], p["x"])
    fx = obs.positions("fixed", times, L, W, seed=1, n_grid=32 * 32, fraction=0.1)
    np.testing.assert_array_equal(fx["x"].reshape(5, 102), np.broadcast_to(fx["x"][:102], (5, 102)))
    assert not np.isin(fx["x"][:102], p["x"][:102]).any()  # its own stream, not day 0 of ``random``
    x, y = obs.random_positions(100, L, W, seed=2)
    assert x.shape == y.shape == (100,)
    with pytest.raises(TypeError):
        obs.positions("random", times, L, W, seed=1)
    with pytest.raises(ValueError):
        obs.positions("nadir2", times, L, W, seed=1)
    with pytest.raises(ValueError):
        obs.positions("nadir1", times[::-1], L, W, seed=1)


def test_add_noise():
    v = torch.zeros(20000, dtype=torch.float64)
    a, b = obs.add_noise(v, 0.5, seed=3), obs.add_noise(v, 0.5, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, obs.add_noise(v, 0.5, seed=4))
    assert abs(a.std().item() - 0.5) < 0.02 and abs(a.mean().item()) < 0.02
    assert obs.add_noise(v.float(), 0.5, seed=3).dtype == torch.float32
    n = obs.add_noise(np.zeros(20000), 2.0, seed=3)
    assert isinstance(n, np.ndarray) and abs(n.std() - 2.0) < 0.05
    np.testing.assert_array_equal(n, obs.add_noise(np.zeros(20000), 2.0, seed=3))


def test_l96_indices():
    np.testing.assert_array_equal(obs.l96_indices(40, fraction=0.5), np.arange(0, 40, 2))
    np.testing.assert_array_equal(obs.l96_indices(40, n=40), np.arange(40))
    r = obs.l96_indices(40, n=10, seed=3)
    assert r.size == 10 and np.unique(r).size == 10 and np.all(np.diff(r) > 0) and r.max() < 40
    np.testing.assert_array_equal(r, obs.l96_indices(40, n=10, seed=3))
    assert obs.l96_indices(40, n=7).size == 7
    with pytest.raises(TypeError):
        obs.l96_indices(40)
