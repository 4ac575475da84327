"""Physics tests of the two-layer / single-layer QG world (data_scripts.qg) and its coarse-graining.

Each test checks the solver against a property of the equations (exact linear
solutions, an energy budget, exact commutation identities), not against stored
snapshots. Small grids, float64; the whole file runs in well under a minute on 2 cores.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from data_scripts.coarsen import coarsen, filter_gain, subgrid_forcing
from data_scripts.qg import EDDY, JET, QGModel

L = 1e6


@pytest.fixture(autouse=True)
def _one_thread():
    """Small FFTs: threads only add overhead (and stall badly on a loaded 2-core machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def plane_wave(m: QGModel, amps, mi: int, ni: int) -> torch.Tensor:
    """Real field (1, nz, ny, nx) = Re(amps[i] exp(i(k x + l y))) per layer, k = 2 pi mi / L, l = 2 pi ni / W."""
    k, l = 2 * math.pi * mi / m.L, 2 * math.pi * ni / m.W
    th = k * m.x.double()[None, :] + l * m.y.double()[:, None]
    e = torch.exp(1j * th)
    return torch.stack([(complex(a) * e).real for a in amps])[None]


def coef(m: QGModel, q: torch.Tensor, mi: int, ni: int) -> torch.Tensor:
    """Complex amplitude per layer of the mode (mi, ni) in a real field (1, nz, ny, nx)."""
    return torch.fft.rfft2(q)[0, :, ni % m.ny, mi] * 2 / m.M


def ab3_factor(lam_dt: complex, n: int) -> complex:
    """Discrete amplification after n steps of dc/dt = lam c with pyqg's Euler, AB2, AB3 sequence (no filter)."""
    hist, c = [], 1.0 + 0j
    coeffs = ((1.0, 0.0, 0.0), (1.5, -0.5, 0.0), (23 / 12, -16 / 12, 5 / 12))
    for i in range(n):
        hist.insert(0, lam_dt * c)
        a = coeffs[min(i, 2)]
        c = c + sum(w * d for w, d in zip(a, hist[:3]))
    return c


# ---------------------------------------------------------------- 1. linear Rossby waves
@pytest.mark.parametrize("mode", ["barotropic", "baroclinic"])
def test_rossby_wave_dispersion(mode):
    """A single Fourier mode (Jacobian exactly 0) propagates at omega = -beta k / (K^2 + kd^2).

    Two layers at rest (U = 0, no drag); the barotropic mode has kd = 0, the
    baroclinic mode (H1 psi1 + H2 psi2 = 0) kd = 1/rd. The phase after ~6 rad
    matches the exact solution; the complex amplitude matches the AB3 recursion of
    the exact frequency to round-off.
    """
    p = dict(EDDY, U1=0.0, U2=0.0, rek=0.0)
    m = QGModel(nx=16, **p)
    mi, ni = 2, 1
    k, l = 2 * math.pi * mi / L, 2 * math.pi * ni / L
    K2 = k * k + l * l
    if mode == "barotropic":
        psi, kd2 = [1.0, 1.0], 0.0
    else:
        psi, kd2 = [1.0, -m.delta], 1.0 / m.rd ** 2
    omega = -m.beta * k / (K2 + kd2)
    omega_max = m.beta / (2 * math.pi / L)  # fastest mode of the grid: barotropic (1, 0)
    m.dt = min(0.01 / abs(omega), 0.1 / omega_max)  # keeps every mode well inside AB3's stable range
    n = int(round(6.0 / (abs(omega) * m.dt)))
    amp = 10.0 * -(K2 + kd2)  # q = -(K^2 + kd^2) psi; psi ~ 10 m^2/s keeps the wave's own (triad) instability asleep
    q0 = plane_wave(m, [amp * a for a in psi], mi, ni)
    q1 = m.step(q0, n)
    ratio = coef(m, q1, mi, ni) / coef(m, q0, mi, ni)
    expected = -omega * n * m.dt  # the coefficient of exp(i(kx + ly)) goes as exp(-i omega t)
    err = torch.remainder(torch.angle(ratio) - expected + math.pi, 2 * math.pi) - math.pi
    assert err.abs().max() < 1e-5 * abs(expected)
    # amplitude: the Euler start amplifies by sqrt(1 + (omega dt)^2), AB3 adds ~(omega dt)^4 per step
    assert torch.allclose(ratio.abs(), torch.ones(2, dtype=torch.float64), rtol=1e-4, atol=0)
    discrete = ab3_factor(-1j * omega * m.dt, n)
    assert torch.allclose(ratio, torch.tensor([discrete] * 2, dtype=torch.complex128), rtol=1e-10, atol=0)
    spec = torch.fft.rfft2(q1)[0].abs()
    spec[:, ni, mi] = 0
    assert spec.max() < 1e-10 * torch.fft.rfft2(q1)[0].abs().max()


# ---------------------------------------------------------------- 2. single-layer decay and forcing
def test_single_layer_mode_decays_with_drag_and_viscosity():
    """nz=1: a single mode decays as exp(-(mu + nu K^2) t) while beta rotates its phase.

    lam dt = 0.01: the exact factor is matched to 1e-4 (the Euler start step's error
    (lam dt)^2 / 2 dominates), the AB3 recursion to round-off.
    """
    mu, nu = 1e-7, 500.0
    m = QGModel(nx=16, nz=1, rek=mu, nu=nu, beta=1.5e-11, L=L)
    mi, ni = 2, 1
    k, l = 2 * math.pi * mi / L, 2 * math.pi * ni / L
    K2 = k * k + l * l
    lam = complex(-(mu + nu * K2), m.beta * k / K2)  # d/dt of the coefficient of exp(i(kx+ly))
    m.dt = 0.01 / abs(lam)
    q0 = plane_wave(m, [1e-6], mi, ni)
    n = 500
    q1 = m.step(q0, n)
    ratio = (coef(m, q1, mi, ni) / coef(m, q0, mi, ni))[0].item()
    assert abs(lam.real * n * m.dt) > 1.0  # the test does see the decay
    assert abs(ratio / complex(np.exp(lam * n * m.dt)) - 1) < 1e-4
    assert abs(ratio / ab3_factor(lam * m.dt, n) - 1) < 1e-11


def test_single_layer_forced_steady_state():
    """nz=1 with a fixed single-mode forcing F relaxes to q = F / (mu + nu K^2) (beta = 0)."""
    mu, nu = 2e-7, 200.0
    mi, ni = 1, 3
    k, l = 2 * math.pi * mi / L, 2 * math.pi * ni / L
    rate = mu + nu * (k * k + l * l)
    base = QGModel(nx=16, nz=1, L=L)
    F = plane_wave(base, [1e-13], mi, ni)[0, 0]
    m = QGModel(nx=16, nz=1, rek=mu, nu=nu, beta=0.0, L=L, forcing=F, dt=0.02 / rate)
    q = m.step(torch.zeros(1, 1, 16, 16, dtype=torch.float64), 2000)  # 40 e-folding times
    assert torch.allclose(q[0, 0], F / rate, rtol=0, atol=1e-8 * float((F / rate).abs().max()))


# ---------------------------------------------------------------- 3. baroclinic instability
def phillips_eigen(p, mi, ni):
    """Analytic growing eigenmode of the linearised two-layer problem (beta, shear, bottom drag).

    For psi_i ~ exp(i(kx + ly) + sigma t):
      (sigma + i k U1) q1 + i k Qy1 psi1 = 0
      (sigma + i k U2) q2 + i k Qy2 psi2 - rek K^2 psi2 = 0
    with q1 = -(K^2+F1) psi1 + F1 psi2, q2 = F2 psi1 - (K^2+F2) psi2: a quadratic in sigma.
    Returns the root with the largest real part and (q1, q2) of its eigenvector.
    """
    k, l = 2 * math.pi * mi / p["L"], 2 * math.pi * ni / p["L"]
    K2 = k * k + l * l
    F1 = 1 / (p["rd"] ** 2 * (1 + p["delta"]))
    F2 = p["delta"] * F1
    U1, U2, r = p["U1"], p["U2"], p["rek"]
    Qy1, Qy2 = p["beta"] + F1 * (U1 - U2), p["beta"] - F2 * (U1 - U2)
    ik = 1j * k
    A = K2 * (K2 + F1 + F2)
    B = A * (ik * U1 + ik * U2) - (K2 + F1) * (ik * Qy2 - r * K2) - (K2 + F2) * ik * Qy1
    C = (A * (ik * U1) * (ik * U2) - (K2 + F1) * (ik * U1) * (ik * Qy2 - r * K2)
         - (K2 + F2) * (ik * U2) * (ik * Qy1) + ik * Qy1 * (ik * Qy2 - r * K2))
    disc = np.sqrt(B * B - 4 * A * C + 0j)
    sig = max([(-B + disc) / (2 * A), (-B - disc) / (2 * A)], key=lambda s: s.real)
    a1 = sig + ik * U1
    psi1, psi2 = 1.0, (a1 * (K2 + F1) - ik * Qy1) / (a1 * F1)
    return sig, (-(K2 + F1) * psi1 + F1 * psi2, F2 * psi1 - (K2 + F2) * psi2)


@pytest.mark.parametrize("regime,mi,ni", [("eddy", 6, 2), ("eddy", 8, 0), ("jet", 7, 1)])
def test_baroclinic_instability_growth_rate(regime, mi, ni):
    """The model's growth rate and frequency of a single unstable mode equal the analytic eigenvalue."""
    p = EDDY if regime == "eddy" else JET
    sig, (q1, q2) = phillips_eigen(p, mi, ni)
    assert sig.real > 0
    m = QGModel(nx=32, **p)
    scale = 1e-12 / abs(q1)
    q0 = plane_wave(m, [scale * q1, scale * q2], mi, ni)
    n0, n1 = 10, 1010
    qa, qb = m.step(q0, n0), m.step(q0, n1)
    ca, cb = coef(m, qa, mi, ni), coef(m, qb, mi, ni)
    rate = torch.log(cb / ca) / ((n1 - n0) * m.dt)  # complex: growth + i (-frequency), mod 2 pi / t
    assert abs(rate[0].real.item() / sig.real - 1) < 1e-4
    assert abs(rate[1].real.item() / sig.real - 1) < 1e-4
    assert abs(rate[0].imag.item() - sig.imag) < 1e-4 * abs(sig)
    assert torch.allclose(cb[1] / cb[0], torch.tensor(q2 / q1, dtype=torch.complex128), rtol=1e-5)


# ---------------------------------------------------------------- 4. energy budget
@pytest.mark.slow
def test_energy_budget_closes_in_equilibrated_turbulence():
    """E_end - E_start = dt * sum(generation - drag) - (net filter dissipation), to < 1 % of the generation.

    32^2, eddy parameters, dt = 1 h, two members spun up to equilibrated turbulence,
    then a 2000-step window stepped with the same Euler/AB2/AB3 + filter update as
    ``QGModel.step`` (checked against it). Generation (mean shear and beta terms) and
    bottom drag are instantaneous rates of the state. Filter dissipation is the energy
    change due to the filter each step, E(q*) - E(filtr q*) with q* the unfiltered AB3
    update, net of E(dq*) restricted to the filtered modes (filtr < 1): the energy the
    explicit increment itself puts into those modes, which the filter then takes out
    again. Without that correction the budget misses a term proportional to dt (13 % of
    the generation here) that is not a loss of resolved energy.
    """
    m = QGModel(nx=32, **dict(EDDY, dt=3600.0))
    g = torch.Generator().manual_seed(3)
    q = m.step(7e-6 * torch.randn(2, 2, 32, 32, generator=g, dtype=torch.float64), 8000)
    qh = m.fft(q)
    dt, filtr = m.dt, m.filtr
    band = (filtr < 1).to(qh.dtype)
    coeffs = ((1.0, 0.0, 0.0), (1.5, -0.5, 0.0), (23 / 12, -16 / 12, 5 / 12))
    E0 = m.energy_h(qh)["total"]
    gen = drag = filt = inj = adv = 0.0
    d1 = d2 = torch.zeros_like(qh)
    ref = m.step(q, 3)
    for i in range(2000):
        b = m.energy_budget_h(qh)
        gen, drag, adv = gen + dt * b["generation"], drag + dt * b["drag"], adv + dt * b["advection"]
        d0 = m.tendency_h(qh)
        c = coeffs[min(i, 2)]
        inc = dt * (c[0] * d0 + c[1] * d1 + c[2] * d2)
        unf = qh + inc
        new = filtr * unf
        filt = filt + (m.energy_h(unf)["total"] - m.energy_h(new)["total"])
        inj = inj + m.energy_h(inc * band)["total"]
        qh, d2, d1 = new, d1, d0
        if i == 2:
            assert torch.allclose(m.ifft(qh), ref, rtol=0, atol=1e-12 * float(ref.abs().max()))
    dE = m.energy_h(qh)["total"] - E0
    net_filter = filt - inj
    resid = dE - (gen - drag - net_filter)
    assert (gen > 0).all() and (drag > 0).all() and (net_filter > 0).all()
    assert (dE.abs() < 0.25 * gen).all()  # statistically steady: little net change over the window
    assert (resid.abs() < 0.01 * gen).all(), (resid / gen)
    assert (adv.abs() < 1e-10 * gen).all()  # the flux-form Jacobian conserves energy exactly


def test_advection_conserves_energy():
    """Pseudo-spectral flux-form advection does not change the energy (each layer, any state)."""
    m = QGModel(nx=32, **EDDY)
    q = 1e-5 * torch.randn(3, 2, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    b = m.energy_budget_h(m.fft(q))
    assert (b["advection"].abs() < 1e-10 * b["generation"].abs()).all()
    assert (b["drag"] > 0).all()


# ---------------------------------------------------------------- 5. coarse-graining and subgrid forcing
def test_coarsen_single_mode_lands_on_lr_cell_centres():
    """C(cos(k x + l y + phi)) = G(k, l) cos(k x_LR + l y_LR + phi) with x_LR = (i + 0.5) dx_LR."""
    hr, nx = 64, 16
    x = (torch.arange(hr, dtype=torch.float64) + 0.5) * L / hr
    xl = (torch.arange(nx, dtype=torch.float64) + 0.5) * L / nx
    for mi, ni in [(3, -2), (0, 5), (7, 7)]:
        k, l = 2 * math.pi * mi / L, 2 * math.pi * ni / L
        f = torch.cos(k * x[None, :] + l * x[:, None] + 0.3)
        gain = math.exp(-((2 * math.pi * mi / nx) ** 2 + (2 * math.pi * ni / nx) ** 2) / 6)
        expect = gain * torch.cos(k * xl[None, :] + l * xl[:, None] + 0.3)
        assert torch.allclose(coarsen(f, nx), expect, rtol=0, atol=1e-13)
        assert abs(filter_gain(nx)[ni % nx, mi].item() - gain) < 1e-15


def test_coarsen_removes_unresolved_and_nyquist_modes():
    hr, nx = 64, 16
    x = (torch.arange(hr, dtype=torch.float64) + 0.5) * L / hr
    for mi, ni in [(8, 0), (0, 8), (9, 3), (20, 31)]:
        f = torch.cos(2 * math.pi * (mi * x[None, :] + ni * x[:, None]) / L)
        assert coarsen(f, nx).abs().max() < 1e-14


def test_coarsen_commutes_with_filter_and_is_batched():
    """Truncate-then-filter on LR == filter-on-HR-then-truncate; leading dims are independent."""
    hr, nx = 64, 16
    q = torch.randn(2, 3, 2, hr, hr, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gauss = coarsen(q, nx)
    sharp = coarsen(q, nx, filter=None)
    lr_filtered = torch.fft.irfft2(torch.fft.rfft2(sharp) * filter_gain(nx), s=(nx, nx))
    hr_filtered = torch.fft.irfft2(torch.fft.rfft2(q) * filter_gain(nx, nx=hr, ny=hr), s=(hr, hr))
    assert torch.allclose(gauss, lr_filtered, atol=1e-13)
    assert torch.allclose(gauss, coarsen(hr_filtered, nx, filter=None), atol=1e-13)
    assert torch.allclose(gauss[1, 2], coarsen(q[1, 2], nx), atol=1e-14)
    assert torch.allclose(coarsen(q.float(), nx).double(), gauss, atol=1e-5)


def test_subgrid_forcing_closes_lr_tendency():
    """RHS_LR(C q) + S == C(RHS_HR(q)) to round-off, and S is not negligible for turbulent q."""
    mh, ml = QGModel(nx=64, **EDDY), QGModel(nx=16, **EDDY)
    q = mh.step(torch.randn(2, 2, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1e-5, 50)
    S = subgrid_forcing(mh, ml, q)
    target = coarsen(mh.tendency(q, dealias=True), 16)
    lhs = ml.tendency(coarsen(q, 16)) + S
    assert torch.allclose(lhs, target, rtol=0, atol=1e-12 * float(target.abs().max()))
    assert float(S.abs().max()) > 1e-3 * float(target.abs().max())


def test_subgrid_forcing_vanishes_for_fields_the_lr_grid_resolves():
    """For q with |m|, |n| < nx_LR/4 the LR products are exact, so with the sharp filter S == 0;

    a single Fourier mode (J = 0) gives S == 0 with the Gaussian filter too.
    """
    mh, ml = QGModel(nx=64, **EDDY), QGModel(nx=16, **EDDY)
    g = torch.Generator().manual_seed(5)
    spec = torch.zeros(2, 2, 64, 33, dtype=torch.complex128)
    band = torch.randn(2, 2, 7, 4, 2, generator=g, dtype=torch.float64)
    spec[..., :4, :4] = torch.view_as_complex(band[:, :, :4].contiguous())
    spec[..., -3:, :4] = torch.view_as_complex(band[:, :, 4:].contiguous())
    spec[..., 0, 0] = 0
    q = torch.fft.irfft2(spec, s=(64, 64)) * 1e-3
    scale = float(ml.tendency(coarsen(q, 16)).abs().max())
    assert float(subgrid_forcing(mh, ml, q, filter=None).abs().max()) < 1e-12 * scale
    assert float(subgrid_forcing(mh, ml, q).abs().max()) > 1e-4 * scale  # the Gaussian filter does not commute with J
    qm = plane_wave(mh, [1e-5, -3e-6], 3, 2)
    assert float(subgrid_forcing(mh, ml, qm).abs().max()) < 1e-12 * float(ml.tendency(coarsen(qm, 16)).abs().max())


# ---------------------------------------------------------------- API, batching, autograd, precision
def test_step_run_batch_and_paths_agree():
    m = QGModel(nx=32, **EDDY)
    q0 = m.step(m.initial_condition(3, seed=1) * 1e3, 5)
    a = m.step(q0, 7)
    b = torch.cat([m.step(q0[i:i + 1], 7) for i in range(3)])
    assert torch.allclose(a, b, rtol=0, atol=1e-15 * float(a.abs().max()))
    for _, _q in m.run(q0, 6, 3):  # the generator never leaks its no-grad mode to the caller
        assert torch.is_grad_enabled()
    abandoned = m.run(q0, 9, 3)
    next(abandoned)
    assert torch.is_grad_enabled()
    snaps = list(m.run(q0, 9, 3))
    assert [n for n, _ in snaps] == [3, 6, 9]
    assert torch.allclose(snaps[0][1], m.step(q0, 3), atol=0, rtol=0)
    assert torch.allclose(snaps[2][1], m.step(q0, 9), rtol=0, atol=1e-14 * float(a.abs().max()))
    with torch.enable_grad():
        g = m.step(q0.clone().requires_grad_(True), 7)
    assert torch.allclose(g.detach(), a, rtol=0, atol=1e-14 * float(a.abs().max()))
    assert m.step(q0[0], 2).shape == (2, 32, 32)
    assert torch.equal(m.initial_condition(2, seed=4), m.initial_condition(2, seed=4))
    assert not torch.equal(m.initial_condition(1, seed=4), m.initial_condition(1, seed=5))


@pytest.mark.parametrize("nz,forced,pocket", [(2, False, False), (2, True, True), (1, True, False)])
def test_fused_cpu_kernel_matches_torch_ops(nz, forced, pocket):
    """The fused C kernel path (member chunks, pocketfft inverse FFTs) and the pure-torch path give the same run."""
    p = dict(EDDY, nu=20.0) if nz == 2 else dict(rek=1e-7, nu=20.0, beta=1e-11)
    F = 1e-13 * torch.randn(32, 32, generator=torch.Generator().manual_seed(7), dtype=torch.float64) if forced else None
    fused = QGModel(nx=32, nz=nz, **p, forcing=F)
    fused._CHUNK_BYTES = 1  # one member per chunk
    if pocket:
        fused._POCKET_BYTES = 0
    ref = QGModel(nx=32, nz=nz, **p, forcing=F, backend="torch")
    q = ref.step(1e-5 * torch.randn(3, nz, 32, 32, generator=torch.Generator().manual_seed(8), dtype=torch.float64), 5)
    a, b = fused.step(q, 40), ref.step(q, 40)
    assert torch.allclose(a, b, rtol=0, atol=1e-13 * float(b.abs().max()))
    for (na, qa), (nb, qb) in zip(fused.run(q, 20, 10), ref.run(q, 20, 10)):
        assert na == nb and torch.allclose(qa, qb, rtol=0, atol=1e-13 * float(qb.abs().max()))


def test_invert_and_tendency_consistency():
    """invert recovers psi of a known field; tendency is the Euler step increment over dt (no filter)."""
    m = QGModel(nx=16, **EDDY)
    mi, ni = 3, 2
    K2 = (2 * math.pi / L) ** 2 * (mi ** 2 + ni ** 2)
    psi = plane_wave(m, [1.0, 0.5], mi, ni)
    q = torch.stack([-K2 * psi[:, 0] + m.F1 * (psi[:, 1] - psi[:, 0]),
                     -K2 * psi[:, 1] + m.F2 * (psi[:, 0] - psi[:, 1])], 1)
    assert torch.allclose(m.invert(q), psi, atol=1e-12)
    q = m.step(m.initial_condition(1, 0) * 1e3, 3)
    u, v = m.velocities(q)
    e = m.energy(q)
    assert torch.allclose(e["ke"], 0.5 * (u ** 2 + v ** 2).mean((-2, -1)), rtol=1e-12)
    p_ = m.invert(q)
    ape = 0.5 * m.H1 / m.H * m.F1 * ((p_[:, 0] - p_[:, 1]) ** 2).mean((-2, -1))
    assert torch.allclose(e["ape"], ape, rtol=1e-12)
    one = m.step(q, 1)
    assert torch.allclose(m.ifft(m.filtr * m.fft(q + m.dt * m.tendency(q))), one, rtol=0,
                          atol=1e-13 * float(one.abs().max()))


def test_autograd_through_steps():
    m = QGModel(nx=8, **dict(EDDY, dt=3600.0))
    q = (1e-5 * torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    q.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: m.step(x, 4), (q,), eps=1e-10, atol=1e-8, rtol=1e-5)


def test_float32_tracks_float64_and_cold_start_is_stable():
    m64 = QGModel(nx=32, **EDDY)
    m32 = QGModel(nx=32, **EDDY, dtype=torch.float32)
    q = m64.step(1e-5 * torch.randn(1, 2, 32, 32, generator=torch.Generator().manual_seed(0),
                                    dtype=torch.float64), 10)
    a, b = m64.step(q, 50), m32.step(q.float(), 50)
    assert b.dtype == torch.float32
    assert float((a - b.double()).abs().max()) < 1e-4 * float(a.abs().max())


# ---------------------------------------------------------------- optional: pyqg itself
def _pyqg_python():
    try:
        import pyqg  # noqa: F401
        return sys.executable
    except ImportError:
        return os.environ.get("PYQG_PYTHON")


PYQG_REF = r"""
import sys, numpy as np, pyqg
q0 = np.load(sys.argv[1])
m = pyqg.QGModel(nx=q0.shape[-1], log_level=0, beta=1.5e-11, rd=15000., delta=0.25, rek=5.787e-7, U1=0.025,
                 U2=0., H1=500., L=1e6, dt=3600., filterfac=23.6)
m.q = q0.copy()
out = []
for n in range(int(sys.argv[3])):
    m._step_forward()
    out.append(m.q.copy())
np.save(sys.argv[2], np.array(out))
"""


@pytest.mark.skipif(_pyqg_python() is None, reason="pyqg not importable (set PYQG_PYTHON to a python that has it)")
def test_matches_pyqg_step_by_step(tmp_path):
    """Same initial turbulent q, 100 steps: our trajectory equals pyqg 0.7's to round-off."""
    m = QGModel(nx=32, **EDDY)
    q0 = m.step(1e-5 * torch.randn(1, 2, 32, 32, generator=torch.Generator().manual_seed(0),
                                   dtype=torch.float64), 20)[0]
    np.save(tmp_path / "q0.npy", q0.numpy())
    n = 100
    subprocess.run([_pyqg_python(), "-c", PYQG_REF, str(tmp_path / "q0.npy"), str(tmp_path / "ref.npy"), str(n)],
                   check=True)
    ref = np.load(tmp_path / "ref.npy")
    ours = np.stack([q[0].numpy() for _, q in m.run(q0[None], n, 1)])
    err = np.abs(ours - ref).max(axis=(1, 2, 3)) / np.abs(ref).max()
    assert err.max() < 1e-11, err
