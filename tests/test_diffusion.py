"""Diffusion DA parts (baselines.diffusion): schedules, parameterisations, loss, samplers,
inpainting and guidance, on Gaussian toys with the exact denoiser (CPU, one thread, a few s).

For data N(mu, s^2 I) the posterior-mean denoiser is known in closed form,
x0_hat = mu + alpha s^2 / (alpha^2 s^2 + sigma^2) (x_t - alpha mu), so the
samplers can be checked without training; one test trains a tiny network.
"""
from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch

from baselines.diffusion import (
    CosineScheduler,
    DDIMSampler,
    DDPMSampler,
    Denoiser,
    DiffusionConfig,
    EpsParam,
    Inpainting,
    LikelihoodGuidance,
    LinearScheduler,
    VParam,
    X0Param,
    diffusion_loss,
    get_parameterization,
    get_scheduler,
    get_weighting,
    hard_mask_from_indices,
    repaint_nfe,
    repaint_schedule,
    soft_mask,
)

SCHEDULERS = [LinearScheduler(), CosineScheduler()]


pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_denoiser(sched, mu: float, s: float):
    """Exact E[x0 | x_t] for x0 ~ N(mu, s^2 I) (differentiable in x_t)."""

    def denoise(x, t):
        a, sg = sched.coefficients(t, x)
        x0 = mu + a * s**2 / (a**2 * s**2 + sg**2) * (x - a * mu)
        return x0, (x - a * x0) / sg

    return denoise


# --- scheduler ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sched", SCHEDULERS, ids=repr)
def test_q_sample_closed_form_and_moments(sched):
    x0 = torch.linspace(-2.0, 2.0, 7, dtype=torch.float64).reshape(1, 1, 7)
    t = torch.tensor([0.3], dtype=torch.float64)
    eps = torch.randn(1, 1, 7, generator=gen(0), dtype=torch.float64)
    a, s = sched.alpha(t), sched.sigma(t)
    assert torch.allclose(a**2 + s**2, torch.ones(1, dtype=torch.float64))
    assert torch.allclose(sched.q_sample(x0, t, eps), a * x0 + s * eps)
    # per-sample t broadcasts over (B, C, H, W)
    tb = torch.tensor([0.1, 0.9], dtype=torch.float64)
    x2 = torch.ones(2, 3, 4, 5, dtype=torch.float64)
    out = sched.q_sample(x2, tb, torch.zeros_like(x2))
    assert torch.allclose(out[1], sched.alpha(tb)[1] * x2[1])
    # empirical moments over many draws
    n = 40000
    xs = sched.q_sample(x0.expand(n, 1, 7), t, torch.randn(n, 1, 7, generator=gen(1), dtype=torch.float64))
    assert torch.allclose(xs.mean(0), a * x0[0], atol=4 * s.item() / math.sqrt(n))
    assert torch.allclose(xs.var(0), s**2 * torch.ones(1, 7, dtype=torch.float64), rtol=0.04)


@pytest.mark.parametrize("sched", SCHEDULERS, ids=repr)
def test_alpha_bar_monotone_from_one_to_zero(sched):
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)
    ab = sched.alpha_bar(t)
    assert (ab.diff() <= 0).all() and (ab[:-1].diff() < 0).sum() > 1900
    assert ab[0].item() == pytest.approx(1.0, abs=1e-12) and ab[-1].item() < 1e-4
    assert torch.isfinite(sched.log_snr(t[1:])).all()
    assert torch.allclose(sched.log_snr(t[1:]), torch.log(ab[1:] / (1 - ab[1:])))


def test_linear_discrete_alpha_bar_is_cumprod():
    sch = LinearScheduler(1e-4, 0.02, 1000)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    k = torch.arange(1, 1001, dtype=torch.float64)
    assert torch.allclose(sch.alpha_bar(k / 1000), torch.cumprod(1 - betas, 0), rtol=1e-12, atol=0)
    # continuous t in between lies between the neighbouring steps
    mid = sch.alpha_bar(torch.tensor(100.5 / 1000, dtype=torch.float64))
    assert sch.alpha_bar(101 / 1000) < mid < sch.alpha_bar(100 / 1000)
    assert get_scheduler("cosine").T == 1000 and isinstance(get_scheduler("linear"), LinearScheduler)


# --- parameterisation and weighting ----------------------------------------------------------


@pytest.mark.parametrize("param", [EpsParam(), VParam(), X0Param()], ids=repr)
@pytest.mark.parametrize("sched", SCHEDULERS, ids=repr)
def test_parameterization_round_trip_and_eps_equivalence(param, sched):
    B = 16
    x0 = torch.randn(B, 2, 9, generator=gen(2), dtype=torch.float64)
    eps = torch.randn(B, 2, 9, generator=gen(3), dtype=torch.float64)
    t = torch.linspace(0.02, 0.98, B, dtype=torch.float64)
    x_t = sched.q_sample(x0, t, eps)
    target = param.target(x0, eps, t, sched)
    x0_hat, eps_hat = param.to_x0_eps(target, x_t, t, sched)
    assert torch.allclose(x0_hat, x0, atol=1e-9) and torch.allclose(eps_hat, eps, atol=1e-9)
    # an output error maps to x0/eps errors by the documented factors (what the weightings use)
    d = 1e-3 * torch.randn(B, 2, 9, generator=gen(4), dtype=torch.float64)
    x0_e, eps_e = param.to_x0_eps(target + d, x_t, t, sched)
    err = d.pow(2).sum((1, 2))
    lam = sched.log_snr(t)
    assert torch.allclose((x0_e - x0).pow(2).sum((1, 2)), param.x0_factor(lam) * err, rtol=1e-6)
    w = get_weighting("eps-equivalent")(t, sched, param)
    assert torch.allclose((eps_e - eps).pow(2).sum((1, 2)), w * err, rtol=1e-6)
    assert get_parameterization(param.name).name == param.name


def test_min_snr_weighting_values():
    sch = CosineScheduler()
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    snr = sch.log_snr(t).exp()
    w = get_weighting("min-snr", gamma=5.0)
    assert torch.allclose(w(t, sch, EpsParam()), torch.clamp(5.0 / snr, max=1.0))
    assert torch.allclose(w(t, sch, VParam()), torch.clamp(snr, max=5.0) / (snr + 1))
    assert torch.allclose(w(t, sch, X0Param()), torch.clamp(snr, max=5.0))
    assert (get_weighting("uniform")(t, sch, VParam()) == 1).all()


# --- training --------------------------------------------------------------------------------


class TinyNet(torch.nn.Module):
    """Pointwise-plus-neighbours conv net with the time as an extra channel."""

    def __init__(self, c_in: int, c_out: int, width: int = 32):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv1d(c_in + 1, width, 3, padding=1, padding_mode="circular"), torch.nn.SiLU(),
            torch.nn.Conv1d(width, width, 1), torch.nn.SiLU(), torch.nn.Conv1d(width, c_out, 1))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1, 1).expand(-1, 1, x.shape[-1])], 1))


def test_training_a_tiny_conditional_denoiser_lowers_the_loss():
    torch.manual_seed(0)
    parts = DiffusionConfig().build()  # cosine, v, eps-equivalent
    net = TinyNet(2, 1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    S = 0.1

    def batch(g, n):  # an "increment" x0 given a "background" cond: x0 | cond ~ N(0.8 cond, S^2)
        cond = torch.randn(n, 1, 16, generator=g)
        return 0.8 * cond + S * torch.randn(n, 1, 16, generator=g), cond

    def oracle(x_in, t):  # the exact conditional denoiser, as a v-predicting model
        x, c = x_in[:, :1], x_in[:, 1:]
        a, s = parts.scheduler.coefficients(t, x)
        x0 = 0.8 * c + a * S**2 / (a**2 * S**2 + s**2) * (x - a * 0.8 * c)
        return a * (x - a * x0) / s - s * x0

    x_ev, c_ev = batch(gen(10), 512)

    def eval_loss(model):
        with torch.no_grad():
            return parts.loss(model, x_ev, c_ev, generator=gen(11), stratified=True).item()

    before, best = eval_loss(net), eval_loss(oracle)
    g = gen(12)
    for _ in range(300):
        x0, cond = batch(g, 64)
        loss = parts.loss(net, x0, cond, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss(net)
    assert after < 0.35 * before and best < after < 1.3 * best, (before, after, best)
    # the trained net is usable as a denoise_fn; an unconditional model works too (cond=None)
    out = parts.sampler.sample(Denoiser(net, parts.parameterization, parts.scheduler, c_ev[:8]), (8, 1, 16),
                               generator=gen(13))
    assert out.sample.shape == (8, 1, 16) and out.nfe == 50 and torch.isfinite(out.sample).all()
    uncond = diffusion_loss(TinyNet(1, 1), x_ev, None, parts.scheduler, EpsParam(), get_weighting("uniform"), gen(1))
    assert uncond.ndim == 0 and torch.isfinite(uncond)


# --- samplers --------------------------------------------------------------------------------


@pytest.mark.parametrize("sched", SCHEDULERS, ids=repr)
@pytest.mark.parametrize("Sampler", [DDPMSampler, DDIMSampler])
def test_samplers_reproduce_gaussian_moments(sched, Sampler):
    mu, s = 0.5, 0.5
    out = Sampler(sched, n_steps=250).sample(gaussian_denoiser(sched, mu, s), (400, 2, 4, 4), generator=gen(5))
    assert out.nfe == 250
    x = out.sample
    assert abs(x.mean().item() - mu) < 0.03 * s + 3 * s / math.sqrt(x.numel())
    assert x.std().item() == pytest.approx(s, rel=0.03)


def test_ddim_deterministic_ddpm_stochastic_and_ddim_eta1_is_ddpm():
    sch = CosineScheduler()
    f = gaussian_denoiser(sch, 0.2, 0.7)
    ddim = DDIMSampler(sch, n_steps=20, eta=0.0)
    a = ddim.sample(f, (8, 1, 32), generator=gen(7)).sample
    b = ddim.sample(f, (8, 1, 32), generator=gen(7)).sample
    assert torch.equal(a, b)
    x_T = torch.randn(8, 1, 32, generator=gen(8))
    assert torch.equal(ddim.sample(f, x_T, generator=gen(1)).sample, ddim.sample(f, x_T, generator=gen(2)).sample)
    ddpm = DDPMSampler(sch, n_steps=20)
    c = ddpm.sample(f, (8, 1, 32), generator=gen(7)).sample
    d = ddpm.sample(f, (8, 1, 32), generator=gen(9)).sample
    assert not torch.allclose(c, d)
    # one DDIM(eta=1) step is the DDPM posterior step
    x_t = torch.randn(4, 1, 8, generator=gen(3), dtype=torch.float64)
    x0_hat, eps_hat = f(x_t, torch.full((4,), 0.6, dtype=torch.float64))
    s1 = DDPMSampler(sch).reverse_step(x_t, 0.6, 0.4, x0_hat, eps_hat, gen(4))
    s2 = DDIMSampler(sch, eta=1.0).reverse_step(x_t, 0.6, 0.4, x0_hat, eps_hat, gen(4))
    assert torch.allclose(s1, s2, atol=1e-12)


# --- inpainting ------------------------------------------------------------------------------


@pytest.mark.parametrize("spatial", [(32,), (12, 16)])
def test_soft_mask_periodic_blur(spatial):
    n = math.prod(spatial)
    c = n // 2 + (spatial[-1] // 2 if len(spatial) == 2 else 0)  # the grid's centre, flat
    m_hard = hard_mask_from_indices(torch.tensor([[0, c, c]]), spatial)  # one single, one double
    assert m_hard.sum() == 3 and m_hard.flatten()[c] == 2
    m = soft_mask(m_hard, 1.5).flatten(2)[0, 0]
    assert m[0] == pytest.approx(1.0) and m[c] == 1.0  # isolated -> 1; double -> clipped to 1
    m2 = soft_mask(m_hard, 1.5)[0, 0]
    e1 = math.exp(-0.5 / 1.5**2)  # weight one cell away
    assert m2[..., -1].flatten()[0] == pytest.approx(e1)  # index 0 spreads to the last index (last dim)
    assert m2[..., 1].flatten()[0] == pytest.approx(e1)
    if len(spatial) == 2:  # and along the first dim, and to the corner (-1, -1)
        assert m2[-1, 0] == pytest.approx(e1) and m2[-1, -1] == pytest.approx(e1**2)
    assert ((m >= 0) & (m <= 1)).all()
    for sg in (0.0, 1e-3, 0.05):  # sigma_G -> 0 gives back the hard 0/1 mask
        assert torch.equal(soft_mask(m_hard, sg), m_hard.clamp(0, 1))


@pytest.mark.parametrize("Sampler", [DDPMSampler, DDIMSampler])
@pytest.mark.parametrize("spatial", [(32,), (8, 8)])
def test_inpainting_returns_observations_at_observed_points(Sampler, spatial):
    sch = CosineScheduler()
    n = math.prod(spatial)
    idx = torch.tensor([[1, 5, n - 3], [0, 2, n - 1]])
    hard = hard_mask_from_indices(idx, spatial)
    x_tilde = 2.0 * torch.ones(2, 2, *spatial)  # 2 channels, observed in both
    inp = Inpainting(sch, x_tilde, hard, sigma_g=0.0, jump_length=5, n_resample=1)
    out = inp.sample(Sampler(sch, n_steps=20), gaussian_denoiser(sch, 0.0, 1.0), (2, 2, *spatial), generator=gen(6))
    obs = hard.expand(2, 2, *spatial).bool()
    assert torch.equal(out.sample[obs], x_tilde[obs])
    assert (out.sample[~obs] - 2.0).abs().min() > 0  # elsewhere a sample
    assert out.nfe == repaint_nfe(20, 5, 1) == 40


def test_noise_matched_replacement_samples_the_kalman_analysis_where_a_repeated_blend_copies_the_observation():
    """Prior N(0, 1) per cell, observation 1.5 with error variance r = 0.5 at three cells: the posterior
    there is N(1.5 / (1 + r), r / (1 + r)). Matched replacement with a stochastic sampler reaches it; the
    paper's blend with the Kalman weight 1 / (1 + r), applied at every step, ends at the observation itself."""
    sch = CosineScheduler()
    f = gaussian_denoiser(sch, 0.0, 1.0)
    idx = torch.tensor([[2, 7, 11]])
    n, r = 4000, 0.5
    hard = hard_mask_from_indices(idx, (16,)).expand(n, 1, 16)
    x_tilde = torch.zeros(n, 1, 16)
    x_tilde[..., idx[0]] = 1.5
    free = torch.tensor([0, 5, 9, 14])

    def run(**kw):
        inp = Inpainting(sch, x_tilde, hard, sigma_g=0.0, n_resample=0, **kw)
        return inp.sample(DDPMSampler(sch, n_steps=200), f, (n, 1, 16), generator=gen(3)).sample[:, 0]

    out = run(error_var=r)
    obs = out[:, idx[0]]
    assert float(obs.mean()) == pytest.approx(1.5 / (1 + r), abs=0.03)
    assert float(obs.var(0).mean()) == pytest.approx(r / (1 + r), rel=0.08)
    assert float(out[:, free].mean()) == pytest.approx(0.0, abs=0.04)  # unobserved cells keep the prior
    assert float(out[:, free].var(0).mean()) == pytest.approx(1.0, rel=0.1)
    blended = run(weight=1.0 / (1.0 + r))[:, idx[0]]
    assert float(blended.mean()) == pytest.approx(1.5, abs=0.01) and float(blended.std(0).max()) < 0.05


def test_repaint_schedule_nfe_matches_formula():
    sch = LinearScheduler()
    calls = []

    def f(x, t):
        calls.append(float(t[0]))
        return gaussian_denoiser(sch, 0.0, 1.0)(x, t)

    for N, J, r in [(50, 10, 1), (50, 10, 0), (20, 4, 3), (23, 5, 2), (10, 1, 2), (6, 10, 4)]:
        levels = repaint_schedule(N, J, r)
        assert levels[0] == N and levels[-1] == 0
        downs = sum(b < a for a, b in pairwise(levels))
        assert downs == repaint_nfe(N, J, r) == N + (N // J) * r * J
        calls.clear()
        inp = Inpainting(sch, torch.zeros(1, 1, 16), torch.zeros(1, 1, 16), jump_length=J, n_resample=r)
        out = inp.sample(DDIMSampler(sch, n_steps=N), f, (1, 1, 16), generator=gen(0))
        assert out.nfe == len(calls) == inp.nfe(N) == repaint_nfe(N, J, r)
    assert repaint_schedule(4, 2, 1) == [4, 3, 2, 4, 3, 2, 1, 0, 2, 1, 0]
    assert DiffusionConfig().build().nfe() == 100


# --- guidance --------------------------------------------------------------------------------


def test_guidance_reduces_observation_misfit():
    sch = CosineScheduler()
    f = gaussian_denoiser(sch, 0.0, 1.0)
    idx = torch.tensor([2, 7, 11])
    y, R = torch.full((1, 3), 1.5), 0.05**2
    obs_op = lambda x: x[:, 0, idx]
    sampler = DDIMSampler(sch, n_steps=50)
    misfit = {}
    for scale in (0.0, 0.3 * R):
        g = LikelihoodGuidance(obs_op, y, R, scale=scale)
        out = sampler.sample(g.denoiser(f), (100, 1, 16), generator=gen(1), hook=g.hook)
        misfit[scale] = g.misfit(out.sample).mean().item()
    assert misfit[0.3 * R] < 0.01 * misfit[0.0], misfit
    g = LikelihoodGuidance(obs_op, y, R, scale=0.05, normalize=True)
    out = sampler.sample(g.denoiser(f), (100, 1, 16), generator=gen(1), hook=g.hook)
    assert g.misfit(out.sample).mean().item() < 0.5 * misfit[0.0]
    # wired through the config, combined with inpainting of the same points
    parts = DiffusionConfig(guidance="inpainting+dps", n_steps=20, n_resample=0).build()
    hard = hard_mask_from_indices(idx[None], (16,))
    x_tilde = torch.zeros(1, 1, 16)
    x_tilde[..., idx] = 1.5
    out = parts.sample(gaussian_denoiser(parts.scheduler, 0.0, 1.0), (4, 1, 16), gen(2), x_tilde=x_tilde,
                       hard_mask=hard, obs_op=obs_op, y=y, R=R)
    assert out.nfe == 20 and torch.isfinite(out.sample).all()
    assert torch.allclose(out.sample[..., idx], torch.full((4, 1, 3), 1.5))


def test_guidance_ignores_observations_with_infinite_error():
    """Padding and unobserved points carry R = inf: they must not pull the state towards their filler 0."""
    from baselines.diffusion.guidance import LikelihoodGuidance

    y = torch.tensor([[1.0, 0.0, 2.0]])
    R = torch.tensor([[0.5, float("inf"), 2.0]])
    g = LikelihoodGuidance(lambda x: x, y, R)
    x0 = torch.tensor([[0.0, 5.0, 0.0]], requires_grad=True)
    L = g.misfit(x0)
    assert float(L) == pytest.approx(0.5 * (1.0 / 0.5 + 4.0 / 2.0))
    (grad,) = torch.autograd.grad(L.sum(), x0)
    assert float(grad[0, 1]) == 0.0 and torch.isfinite(grad).all()


def test_the_denoiser_gives_the_same_output_in_chunks_as_in_one_batch():
    """Chunking the network's batch (``Denoiser.chunk``, a CPU speed-up) changes no number: the U-Net's
    output for one sample does not depend on the other samples in its batch (GroupNorm is per sample)."""
    from baselines.learned.nets import UNet

    net = UNet(4, 2, dim=2, base_channels=8, channel_mults=(1, 2), blocks_per_level=1, embedding_dim=16).eval()
    parts = DiffusionConfig().build()
    g = torch.Generator().manual_seed(0)
    x, cond, t = torch.randn(37, 2, 8, 8, generator=g), torch.randn(37, 2, 8, 8, generator=g), torch.rand(37, generator=g)
    with torch.no_grad():
        one = Denoiser(net, parts.parameterization, parts.scheduler, cond, chunk=None)(x, t)
        chunked = Denoiser(net, parts.parameterization, parts.scheduler, cond, chunk=5)(x, t)
    assert not torch.equal(one[0][:5], one[0][5:10])
    assert torch.equal(one[0], chunked[0]) and torch.equal(one[1], chunked[1])
