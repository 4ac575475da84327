"""Observing systems: where observations are taken, and the exact value of a field there.

All functions are pure and deterministic given a seed.

Units. Positions ``x, y`` are in the units of the domain size ``L`` (along x)
and ``W`` (along y); the domain is doubly periodic, ``[0, L) x [0, W)``, and
every position returned lies in it. Times are in the units of ``times``.
The functions are unit-agnostic: the physical defaults (track spacing, swath
width, repeat cycle) are given in km and days and converted with ``km`` (the
length of one kilometre in the units of L; default 1000, i.e. L in metres) and
``day`` (one day in the units of ``times``; default 86400, i.e. seconds). The
dataset generators work in metres and seconds internally and write km and
days to disk; call with ``km=1, day=1`` to work in km and days.

Scenarios (``positions``):

* ``random``: ``fraction`` x ``n_grid`` uniformly random points per time, new
  each time (``fixed=False``) or the same at every time.
* ``fixed``: ``random`` with ``fixed=True``: a fixed network (moorings, tide
  gauges), the same seeded positions at every time.
* ``nadir1`` / ``nadir4``: conventional altimeters, 1 or 4 satellites. Each
  pass is a straight ground track at ``angle_deg`` to the x axis (77 deg,
  ascending; 180 - 77 deg descending), crossing the domain once from y = 0 to
  y = W and wrapping in x, sampled every ``spacing_km`` (about the 1 Hz
  along-track spacing of Jason/SARAL, ~6-7 km). A 77 deg ground-track angle is
  what the high-inclination orbits of SARAL, Sentinel-3 and SWOT (inclination
  77.6 deg) draw at mid latitudes. Passes alternate ascending/descending, one
  every ``repeat_days / (2 n_track)`` per satellite, where ``n_track =
  round(L / track_spacing_km)`` parallel tracks of each direction exist; the
  k-th ascending (descending) pass of a cycle uses track k, so the tracks
  advance eastward with time and repeat exactly every ``repeat_days`` (an
  exact-repeat orbit). Defaults: 10-day repeat (Jason: 9.92 days), 250 km
  between parallel tracks (Jason's 315 km equatorial spacing at ~37 deg
  latitude), i.e. 8 passes per 10 days over a 1000 km box. With 4 satellites
  the tracks of satellite s are offset by s/4 of the track spacing and their
  passes by s/4 of the pass interval. Passes are instantaneous (a satellite
  crosses 1000 km in ~3 min).
* ``swath``: a SWOT-like wide swath: two ``half_width_km`` = 50 km swaths on
  either side of a ``gap_km`` = 20 km nadir gap, pixels every ``pixel_km``
  (2 km, SWOT's L2 grid), on the ground tracks of a 21-day repeat with 110 km
  between parallel tracks (SWOT at mid latitudes). Pixels are kept where the
  unwrapped y lies in [0, W), so each pass covers one full crossing of the
  domain. The nadir altimeter in the gap is not included.

Each pass is attributed to the nearest time in ``times`` (bins end midway
between consecutive times), so the generator samples the field at that time.

Field sampling: ``sample_spectral`` evaluates a doubly periodic field from its
``rfft2`` coefficients at arbitrary points by a separable non-uniform DFT,
exact for the band-limited trigonometric interpolant of the grid values
(pyqg's grid, x_i = (i + 1/2) dx). It reproduces the grid values to round-off.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np
import torch

KM = 1000.0
DAY = 86400.0
SCENARIOS = ("random", "fixed", "nadir1", "nadir4", "swath")

Array = Union[np.ndarray, torch.Tensor]


def random_positions(n: int, L: float, W: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform in [0, L) x [0, W) (float64 arrays x, y)."""
    rng = np.random.default_rng(seed)
    xy = rng.random((2, int(n)))
    return (xy[0] * L) % L, (xy[1] * W) % W


def _pass_times(t0: float, t1: float, interval: float, offset: float) -> np.ndarray:
    """Integers p with offset + p * interval in [t0, t1)."""
    p0 = math.ceil((t0 - offset) / interval)
    p1 = math.ceil((t1 - offset) / interval)
    p = np.arange(p0, p1, dtype=np.int64)
    t = offset + p * interval
    keep = (t >= t0) & (t < t1)
    return p[keep]


def _track_points(x0: float, angle: float, offsets: np.ndarray, step: float,
                  L: float, W: float) -> tuple[np.ndarray, np.ndarray]:
    """Points of one pass: along-track every ``step`` from (x0, 0) at ``angle`` (rad),
    cross-track ``offsets`` (positive to the right of the direction of travel);
    kept where the unwrapped y is in [0, W), then wrapped into [0, L) x [0, W)."""
    ca, sa = math.cos(angle), math.sin(angle)
    dmax = float(np.max(np.abs(offsets)))
    k0 = math.floor(-dmax * abs(ca) / (sa * step)) - 1
    k1 = math.ceil((W + dmax * abs(ca)) / (sa * step)) + 1
    s = (np.arange(k0, k1) + 0.5) * step
    S, D = np.meshgrid(s, offsets, indexing="ij")
    x = x0 + S * ca + D * sa
    y = S * sa - D * ca
    keep = (y >= 0.0) & (y < W)
    return np.mod(x[keep], L) % L, y[keep]


def _tracks(t: float, window: float, n_sat: int, L: float, W: float, seed, offsets_km: np.ndarray,
            step_km: float, angle_deg: float, track_spacing_km: float, repeat_days: float,
            km: float, day: float) -> dict[str, np.ndarray]:
    """All points of the passes with pass time in [t - window/2, t + window/2)."""
    if not 0.0 < angle_deg < 90.0:
        raise ValueError(f"angle_deg must be in (0, 90), got {angle_deg}")
    n_track = max(1, round(L / (track_spacing_km * km)))
    dx_track = L / n_track
    interval = repeat_days * day / (2 * n_track)
    rng = np.random.default_rng(seed)
    x_off, t_off = rng.random() * L, rng.random() * interval
    a = math.radians(angle_deg)
    offsets = np.asarray(offsets_km, dtype=np.float64) * km
    out = {"time": [], "x": [], "y": []}
    for s in range(n_sat):
        for p in _pass_times(t - window / 2, t + window / 2, interval, t_off + s * interval / n_sat):
            ascending = p % 2 == 0
            track = (p // 2) % n_track
            x0 = x_off + (track + s / n_sat + (0.0 if ascending else 0.5)) * dx_track
            x, y = _track_points(x0, a if ascending else math.pi - a, offsets, step_km * km, L, W)
            out["time"].append(np.full(x.shape, t_off + s * interval / n_sat + p * interval))
            out["x"].append(x)
            out["y"].append(y)
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in out.items()}


def nadir_tracks(t: float, n_sat: int, L: float, W: float, *, window: Optional[float] = None, seed=0,
                 angle_deg: float = 77.0, spacing_km: float = 6.0, track_spacing_km: float = 250.0,
                 repeat_days: float = 10.0, km: float = KM, day: float = DAY) -> dict[str, np.ndarray]:
    """Nadir altimeter ground tracks of ``n_sat`` satellites (see module docstring).

    Returns dict(time, x, y) of every along-track point of the passes whose
    (instantaneous) pass time lies in [t - window/2, t + window/2); ``time`` is
    the pass time. ``window`` defaults to one day. ``seed`` sets the phase of the
    pattern (x offset and time offset of the first pass).
    """
    window = day if window is None else window
    return _tracks(t, window, n_sat, L, W, seed, np.zeros(1), spacing_km, angle_deg,
                   track_spacing_km, repeat_days, km, day)


def swath_positions(t: float, L: float, W: float, *, n_sat: int = 1, window: Optional[float] = None, seed=0,
                    angle_deg: float = 77.0, pixel_km: float = 2.0, half_width_km: float = 50.0,
                    gap_km: float = 20.0, track_spacing_km: float = 110.0, repeat_days: float = 21.0,
                    km: float = KM, day: float = DAY) -> dict[str, np.ndarray]:
    """SWOT-like wide-swath pixels (see module docstring); same conventions as ``nadir_tracks``.

    Cross-track pixel centres sit at +-(gap/2 + (j + 1/2) pixel), j < round(half_width / pixel).
    """
    window = day if window is None else window
    n_half = max(1, round(half_width_km / pixel_km))
    d = gap_km / 2 + (np.arange(n_half) + 0.5) * pixel_km
    return _tracks(t, window, n_sat, L, W, seed, np.concatenate([-d[::-1], d]), pixel_km, angle_deg,
                   track_spacing_km, repeat_days, km, day)


def _bin_edges(times: np.ndarray, day: float) -> np.ndarray:
    """Bin edges midway between consecutive times; the outer bins are symmetric."""
    if times.size == 1:
        return np.array([times[0] - day / 2, times[0] + day / 2])
    mid = 0.5 * (times[1:] + times[:-1])
    return np.concatenate([[times[0] - (mid[0] - times[0])], mid, [times[-1] + (times[-1] - mid[-1])]])


def positions(scenario: str, times, L: float, W: float, seed, **params) -> dict[str, np.ndarray]:
    """Observation positions of a scenario at the given times: dict(time, x, y), float64, sorted by time.

    ``time`` holds elements of ``times`` (strictly increasing): every pass is
    attributed to the nearest one. Scenario parameters (``params``):

    * ``random``: ``n_grid`` (number of LR grid points; required unless ``n`` is
      given), ``fraction`` (default 0.05) or ``n`` (points per time),
      ``fixed`` (default False: new positions at each time).
    * ``fixed``: the keywords of ``random``; the positions never change.
    * ``nadir1``, ``nadir4``: keywords of ``nadir_tracks`` (``n_sat`` is set).
    * ``swath``: keywords of ``swath_positions``.
    * all: ``km`` and ``day`` unit scales (see the module docstring).
    """
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if times.ndim != 1 or times.size == 0 or np.any(np.diff(times) <= 0):
        raise ValueError("times must be a non-empty, strictly increasing 1-D sequence")
    if scenario == "random":
        return _random_scenario(times, L, W, seed, **params)
    if scenario == "fixed":  # its own random stream: not the first positions of ``random`` with the same seed
        return _random_scenario(times, L, W, np.random.SeedSequence(seed).spawn(1)[0], **dict(params, fixed=True))
    if scenario in ("nadir1", "nadir4"):
        if "n_sat" in params:
            raise TypeError(f"scenario {scenario!r} fixes n_sat; use nadir_tracks for other constellations")
        kind, kwargs = nadir_tracks, dict(params, n_sat=1 if scenario == "nadir1" else 4)
    elif scenario == "swath":
        kind, kwargs = swath_positions, dict(params)
    else:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    day = kwargs.get("day", DAY)
    edges = _bin_edges(times, day)
    lo, hi = edges[0], edges[-1]
    p = kind(t=0.5 * (lo + hi), L=L, W=W, seed=seed, window=hi - lo, **kwargs)
    idx = np.searchsorted(edges, p["time"], side="right") - 1
    ok = (idx >= 0) & (idx < times.size)
    order = np.argsort(idx[ok], kind="stable")
    return {"time": times[idx[ok]][order], "x": p["x"][ok][order], "y": p["y"][ok][order]}


def _random_scenario(times: np.ndarray, L: float, W: float, seed, n_grid: Optional[int] = None,
                     fraction: float = 0.05, n: Optional[int] = None, fixed: bool = False,
                     km: float = KM, day: float = DAY) -> dict[str, np.ndarray]:
    """``positions`` for the random scenario."""
    if n is None:
        if n_grid is None:
            raise TypeError("scenario 'random' needs n_grid (number of LR grid points) or n (points per time)")
        n = int(round(fraction * n_grid))
    nt = times.size
    if fixed:
        x, y = random_positions(n, L, W, seed)
        x, y = np.tile(x, nt), np.tile(y, nt)
    else:
        x, y = random_positions(n * nt, L, W, seed)
    return {"time": np.repeat(times, n), "x": x, "y": y}


def _nudft_basis(coord: torch.Tensor, n: int, length: float, full: bool) -> torch.Tensor:
    """e^{2 pi i k u / n} at grid-index coordinate u = coord / (length/n) - 1/2, shape (..., n_k).

    ``full``: all n FFT wavenumbers in FFT order (as ``fft`` rows); otherwise the
    rfft columns k = 0..n//2 with the Hermitian weight 2 on the columns that stand
    for a +-k pair. The Nyquist mode (even n) is cos(pi u): the real, symmetric
    choice that equals e^{i pi u} at grid points.
    """
    u = torch.remainder(coord.to(torch.float64) * (n / length) - 0.5, float(n))
    if full:
        k = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64, device=coord.device)
    else:
        k = torch.arange(n // 2 + 1, dtype=torch.float64, device=coord.device)
    phase = (2.0 * math.pi / n) * u.unsqueeze(-1) * k
    basis = torch.polar(torch.ones_like(phase), phase)
    if n % 2 == 0:
        nyq = n // 2
        basis[..., nyq] = torch.cos(math.pi * u).to(basis.dtype)
    if not full:
        w = torch.full((k.numel(),), 2.0, dtype=torch.float64, device=coord.device)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        basis = basis * w
    return basis


def sample_spectral(fh: Array, x: Array, y: Array, L: float, W: float, nx: int, ny: int,
                    chunk: int = 4096) -> Array:
    """Values at points (x, y) of doubly periodic fields given by their ``rfft2`` coefficients.

    fh: (batch, ny, nx//2 + 1) or (ny, nx//2 + 1) complex, the rfft2 over the
    last two axes (y rows, x columns) of fields sampled at x_i = (i + 1/2) L/nx,
    y_j = (j + 1/2) W/ny (pyqg's grid). x, y: (P,) points shared by all fields,
    or (batch, P) per field. Returns (batch, P) (or (P,)) real values, torch or
    numpy like ``fh``, real dtype of ``fh``.

    The field is the trigonometric interpolant (1/(nx ny)) sum_{l,k} fh_{l,k}
    e^{i(k x' + l y')}, the +-k pair of each rfft column folded into twice the
    real part and Nyquist modes as cosines, so values at grid points match
    ``irfft2`` to round-off and band-limited fields are exact everywhere. Cost
    O(batch P ny nx / 2), in float64/complex128 whatever the input precision
    (phases of high wavenumbers need it), in chunks of ``chunk`` points.
    Differentiable with respect to ``fh``.
    """
    as_numpy = isinstance(fh, np.ndarray)
    fh_t = torch.as_tensor(fh)
    squeeze = fh_t.ndim == 2
    if squeeze:
        fh_t = fh_t.unsqueeze(0)
    if fh_t.ndim != 3 or fh_t.shape[-2:] != (ny, nx // 2 + 1):
        raise ValueError(f"fh must be (batch, {ny}, {nx // 2 + 1}), got {tuple(fh_t.shape)}")
    if not fh_t.is_complex():
        raise ValueError("fh must be complex rfft2 coefficients")
    dev = fh_t.device
    xt = torch.as_tensor(x, device=dev)
    yt = torch.as_tensor(y, device=dev)
    if xt.shape != yt.shape or xt.ndim not in (1, 2):
        raise ValueError(f"x and y must have the same shape (P,) or (batch, P); got {tuple(xt.shape)}, {tuple(yt.shape)}")
    per_batch = xt.ndim == 2
    if per_batch and xt.shape[0] != fh_t.shape[0]:
        raise ValueError(f"per-field points need batch {fh_t.shape[0]}, got {xt.shape[0]}")
    fh128 = fh_t.to(torch.complex128)
    outs = []
    for start in range(0, xt.shape[-1], chunk):
        xs, ys = xt[..., start:start + chunk], yt[..., start:start + chunk]
        ey = _nudft_basis(ys, ny, W, full=True)
        ex = _nudft_basis(xs, nx, L, full=False)
        outs.append((torch.matmul(ey, fh128) * ex).sum(-1).real)
    b = fh_t.shape[0]
    out = torch.cat(outs, dim=-1) if outs else torch.zeros(b, 0, dtype=torch.float64, device=dev)
    out = (out / (nx * ny)).to(fh_t.real.dtype)
    if squeeze:
        out = out[0]
    return out.cpu().numpy() if as_numpy else out


def sample_field(f: Array, x: Array, y: Array, L: float, W: float, chunk: int = 4096) -> Array:
    """``sample_spectral`` of grid fields f (..., ny, nx) on pyqg's grid (convenience)."""
    as_numpy = isinstance(f, np.ndarray)
    ft = torch.as_tensor(f)
    ny, nx = ft.shape[-2:]
    out = sample_spectral(torch.fft.rfft2(ft), x, y, L, W, nx, ny, chunk)
    return out.cpu().numpy() if as_numpy else out


def trig_weights(coord: torch.Tensor, n: int, length: float) -> torch.Tensor:
    """Weights w (..., n) with f(coord) = sum_i w_i f_i: the trigonometric interpolant of ``sample_spectral``.

    The same band-limited interpolant (Nyquist mode as a cosine), written on grid values
    f_i at (i + 1/2) length/n (even n) as a periodic Dirichlet kernel instead of on
    spectral coefficients: separable, so a 2-D evaluation at P points costs P (nx + ny)
    weights and has a cheap adjoint (``TrigInterpolator``).
    """
    u = coord.to(torch.float64) * (n / length) - 0.5
    d = u.unsqueeze(-1) - torch.arange(n, dtype=torch.float64, device=coord.device)
    # 1 + 2 sum_{k=1}^{m} cos(k theta) = sin((m + 1/2) theta) / sin(theta / 2), m = n/2 - 1, theta = 2 pi d / n
    # (the Dirichlet kernel in closed form: one sine ratio instead of m cosines; for even n its limit
    # is n - 1 wherever theta = 0 mod 2 pi, where numerator and denominator vanish together)
    half = (math.pi / n) * d
    den = torch.sin(half)
    near = den.abs() < 1e-9
    dirichlet = torch.where(near, torch.full_like(d, n - 1.0),
                            torch.sin((n - 1) * half) / torch.where(near, torch.ones_like(den), den))
    return (dirichlet + torch.cos(math.pi * d)) / n


class TrigInterpolator:
    """Exact evaluation of doubly periodic grid fields at off-grid points, batched, with its adjoint.

    ``x``, ``y``: (B, P) positions per batch member (one set of positions per field), in
    the units of ``L`` (x) and ``W`` (y). ``forward(f)``: f (B, [M], ny, nx) -> (B, [M], P);
    ``adjoint(w)``: (B, P) -> (B, ny, nx). value_p = sum_{j,i} Dy[p, j] f[j, i] Dx[p, i],
    equal to ``sample_field`` to round-off.
    """

    def __init__(self, x, y, nx: int, ny: int, L: float, W: float, device="cpu"):
        x = x.to(device, torch.float64) if torch.is_tensor(x) else torch.tensor(np.asarray(x, np.float64), device=device)
        y = y.to(device, torch.float64) if torch.is_tensor(y) else torch.tensor(np.asarray(y, np.float64), device=device)
        if x.ndim == 1:
            x, y = x[None], y[None]
        self.Dx = trig_weights(x, nx, L)
        self.Dy = trig_weights(y, ny, W)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        f = f.to(torch.float64)
        if f.ndim == 4:
            return torch.einsum("bpj,bmji,bpi->bmp", self.Dy, f, self.Dx)
        return torch.einsum("bpj,bji,bpi->bp", self.Dy, f, self.Dx)

    def adjoint(self, w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bp,bpj,bpi->bji", w.to(torch.float64), self.Dy, self.Dx)


def add_noise(values: Array, sigma, seed) -> Array:
    """values + sigma * N(0, 1), deterministic given seed; torch or numpy like ``values``.

    Torch draws come from a CPU generator in float64 (identical on every device),
    then are cast to the dtype and device of ``values``.
    """
    if isinstance(values, torch.Tensor):
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        z = torch.randn(values.shape, generator=g, dtype=torch.float64)
        return values + torch.as_tensor(sigma, dtype=values.dtype, device=values.device) * z.to(values.dtype).to(values.device)
    v = np.asarray(values)
    z = np.random.default_rng(seed).standard_normal(v.shape)
    return (v + np.asarray(sigma) * z).astype(v.dtype if v.dtype.kind == "f" else np.float64)


def l96_indices(N: int, n: Optional[int] = None, fraction: Optional[float] = None, seed="regular") -> np.ndarray:
    """Sorted indices of the observed Lorenz-96 variables.

    Give the count ``n`` or the ``fraction`` of N (rounded, at least 1).
    ``seed="regular"``: evenly spaced, starting at 0 (every other variable for
    fraction 0.5); an integer seed: a random subset without replacement.
    """
    if (n is None) == (fraction is None):
        raise TypeError("give exactly one of n and fraction")
    if n is None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        n = max(1, int(round(fraction * N)))
    if not 1 <= n <= N:
        raise ValueError(f"n must be in [1, {N}], got {n}")
    if isinstance(seed, str):
        if seed != "regular":
            raise ValueError(f"seed must be an integer or 'regular', got {seed!r}")
        return np.unique(np.floor(np.arange(n) * (N / n)).astype(np.int64))
    return np.sort(np.random.default_rng(seed).choice(N, size=n, replace=False)).astype(np.int64)
