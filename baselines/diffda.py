"""``diffda``: diffusion-model data assimilation with ensembles (DiffDA, Huang et al. 2024).

The generative model (``baselines.diffusion``, trained with the ``baselines.learned``
stack): a conditional denoising diffusion model of the analysis increment
(truth - background), normalised per level with train-split statistics,
conditioned on the normalised background (its channels are concatenated to
the noisy sample) with the diffusion time embedded; the denoiser is the ``ae``
U-Net with circular padding (2-D on periodic grids, 1-D on a ring) and a
time embedding. For mapping problems, which have no background, it is an
unconditional prior of the normalised maps.

Observations enter only at sampling (never in training), by RePaint-style
inpainting as in the paper:

* the hard mask m' counts the observations per grid cell (m'_i = sum_j H_ji
  for observations of state variables; the cell holding each point otherwise);
* the known field x_tilde: for observations of state variables, the
  innovations y - H(xb) at the observed variables; for observations of a
  derived field at points (SSH), the cell means of the innovations, filled by
  periodic linear interpolation (``baselines.interp.fill_periodic``) and turned
  into a state increment by the B-regression of the training increments
  (``SpectralCovariance.field_regression``); for mapping (``known_map``), per
  cell the inverse-variance weighted mean of the observations within
  +-``half_window`` days (default 10, from the val study in
  benchmarks/README_learned.md) of the map's day, each weighted by its
  error E(|t|) about the map, which grows with its time offset t; E and the
  correlation rho of one cell's errors are measured on the train split
  (``_calibrate_map_error``), so that the cell estimate's predicted variance
  rho v_correlated + (1 - rho) v_independent matches its error (checked on val
  by ``benchmarks/diffda_map_window.py``);
* the replacement (``replacement``): at each reverse step the known part,
  noised to that level, replaces the sample where there are observations.
  ``matched`` (default): x_tilde's error variance r (normalised units; for
  observations of the state the observation error over the background's,
  r = R / (var(y - H xb) - R) from the train split, divided by the count per
  cell; for a field regressed from observations of another variable, its mean
  square error against the true increment at observed cells of 256 train
  samples, per level) is treated as part of the
  diffusion noise, so a cell is replaced by alpha x_tilde + sqrt(sigma^2 -
  alpha^2 r) z only while sigma^2 >= alpha^2 r and is left to the denoiser
  below (``baselines/diffusion/inpainting.py``); with a stochastic sampler
  (the default eta = 1) this samples the Kalman analysis at observed cells in
  the linear-Gaussian case. ``blend``: the paper's soft mask m = w blur(m') with
  a periodic Gaussian of width ``sigma_g`` cells, clipped to 1, times a weight w
  (``mask_weight``, "kalman": 1 - R / var(y - H xb), or a number; the paper copies
  the observations, w = 1), blended in at every step. Repeated at N steps, any
  w > 0 pulls the sample all the way to x_tilde, observation noise included (on
  a Gaussian toy the Kalman weight ends at the observation, with no spread), which
  is why ``l96-da`` analyses got worse with more observations (docs/methods.md);
  for mapping, ``blend`` is the paper's rule: the day's observations
  (``half_window=1``) interpolated and copied in with w = 1 where observed, the
  default ``matched`` the rule above; jump length and resampling count are
  settings of both;
* perturbed observations (``perturb_obs``, default on with ``blend``, off with
  ``matched``, which already samples the observation error): with more than one member,
  member k's known field is built from y + e_k, e_k ~ N(0, R) drawn per member
  (the stochastic EnKF's device). Without it every blended member is pinned to the
  same x_tilde where the mask is near 1, so the ensemble has almost no spread there.

Likelihood-score guidance (DPS: the gradient of 1/2 |y - H(xb + x0_hat)|²_R
through the denoiser, with the problem's exact H and R = sigma² + sigma_r²) is
the alternative (``guidance=dps``) or an addition (``inpainting+dps``); the
results record which was used.

Ensembles: ``members`` analyses sampled in one batch; the prediction has a
``member`` dim, scored by its mean (µ, λ, lead gained) and as an ensemble
(CRPS, spread/skill, rank histogram). In cycling, ``cycle_members=true``
returns every member (the harness forecasts each: ensemble DA), false only the
mean. With a forecast ensemble as background, ``cycle_condition`` says what a
member is conditioned on: ``mean`` (every member on the ensemble mean and its
innovations, so the forecast spread is discarded and the analysis spread is the
model's alone) or ``member`` (the default: member k on its own forecast xb_k and its own
innovations y - H(xb_k), one draw each: the stochastic EnKF's update with a
learned conditional, which carries the forecast spread into the analysis; on
``l96-cycle`` it took the RMSE from 0.69 to 0.52 and spread/skill from 0.37 to 1.33).

Cost: the number of network evaluations per sample and the sampling time
are recorded. Defaults (``DiffDAConfig``): cosine schedule, v-parameterisation,
DDIM with eta = 1 (the DDPM step: the matched replacement needs a stochastic
sampler) with 25 steps and no resampling: 25 network evaluations, within 2 % of the 1000-step
ensemble mean's error on the val split of ``l96-da`` and ``qg-da`` (benchmarks/README_learned.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from .base import Method, SettingError, Supports
from .learned.train import LearnedConfig

torch = lazy.load("torch")


@dataclass
class DiffDAConfig(LearnedConfig):
    max_epochs: int = 150
    patience: int = 25
    max_minutes: float | None = 30.0
    base_channels: int = 24
    channel_mults: tuple = (1, 2, 4)
    blocks_per_level: int = 2
    embedding_dim: int = 64
    members: int = 16
    scheduler: str = "cosine"
    parameterization: str = "v"
    weighting: str = "eps-equivalent"
    sampler: str = "ddim"
    eta: float = 1.0
    n_steps: int = 25
    sigma_g: float = 1.5
    jump_length: int = 10
    n_resample: int = 0
    #: "inpainting" (DiffDA), "dps" (likelihood-score guidance), "inpainting+dps", "none"
    guidance: str = "inpainting"
    guidance_scale: float = 0.3
    #: "matched" (replace observed cells while the diffusion noise exceeds their error) or "blend" (the paper)
    replacement: str = "matched"
    #: blend only: weight of the known field, "kalman" (the background's share of the innovation variance,
    #: 1 - R / var(y - H xb) on the train split) or a number in (0, 1]
    mask_weight: str = "kalman"
    #: each member's known field is built from its own perturbed observations y + e, e ~ N(0, R)
    #: (as the stochastic EnKF); None: on with "blend", off with "matched"
    perturb_obs: bool | None = None
    #: cycling: forecast every member (ensemble DA) or only the mean
    cycle_members: bool = True
    #: cycling with a forecast ensemble: condition each member on its own forecast ("member", the default: on
    #: l96-cycle RMSE 0.52, spread/skill 1.33, against 0.69 and 0.37 with "mean") or on the ensemble "mean"
    cycle_condition: str = "member"
    #: mapping: observations within this many days of a map's day form its known field (the paper's blend: 1)
    half_window: float = 10.0
    from_checkpoint: str | None = None


class DiffDA(Method):
    name = "diffda"
    summary = "DiffDA: conditional diffusion model of the analysis increment, RePaint inpainting of observations, ensembles"
    supports = Supports(families=("analysis", "cycling", "forecast", "mapping"))
    Config = DiffDAConfig
    reference = "Huang et al. (2024, DiffDA); Lugmayr et al. (2022, RePaint); Chung et al. (2023, DPS)"
    #: settings used only when sampling: changing them reuses the trained model (not in the checkpoint key)
    inference_settings = ("members", "sampler", "eta", "n_steps", "sigma_g", "jump_length", "n_resample",
                          "guidance", "guidance_scale", "replacement", "mask_weight", "perturb_obs",
                          "cycle_members", "cycle_condition", "half_window")

    def _parts(self):
        from .diffusion import DiffusionConfig

        c = self.config
        return DiffusionConfig(scheduler=c.scheduler, parameterization=c.parameterization, weighting=c.weighting,
                               sampler=c.sampler, eta=c.eta, n_steps=c.n_steps, sigma_g=c.sigma_g,
                               jump_length=c.jump_length, n_resample=c.n_resample, guidance=c.guidance,
                               guidance_scale=c.guidance_scale).build()

    def _make(self, geometry, mapping: bool):
        from .learned.learners import DiffusionLearner
        from .learned.nets import UNet

        cfg = self.config
        levels = 1 if mapping else geometry.n_levels
        n_in = levels if mapping else 2 * levels
        parts = self._parts()

        def make(norm):
            net = UNet(n_in, levels, dim=geometry.ndim, base_channels=cfg.base_channels,
                       channel_mults=tuple(int(m) for m in cfg.channel_mults), blocks_per_level=cfg.blocks_per_level,
                       embedding_dim=cfg.embedding_dim)
            learner = DiffusionLearner(net, norm, geometry, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                       max_epochs=cfg.max_epochs, obs_error=cfg.obs_error)
            learner.parts = parts
            return learner

        return make

    def fit(self, train, val) -> None:
        from .learned import fit_learned

        if self.config.replacement not in ("matched", "blend"):
            raise SettingError(f"replacement must be 'matched' or 'blend', got {self.config.replacement!r}")
        if self.config.cycle_condition not in ("mean", "member"):
            raise SettingError(f"cycle_condition must be 'mean' or 'member', got {self.config.cycle_condition!r}")
        self.mapping = train.family == "mapping"
        self.geometry = train.geometry
        self.learner, self.record = fit_learned(self, train, val, self._make(train.geometry, self.mapping), __file__)
        self.learner.parts = self._parts()
        self.regression = None
        if not self.mapping and train.field_map.transfer is not None:
            from .core.spectral_covariance import SpectralCovariance

            xb, xt = train.pairs()
            self.regression = SpectralCovariance.from_samples(xt - xb).field_regression(train.field_map.transfer)
        self.stats = {"nfe_per_sample": self.learner.parts.nfe(), "sampling_seconds": 0.0, "samples": 0}
        self.known_error = None
        if self.regression is not None and self.config.replacement == "matched":
            self.known_error = self._calibrate_known_error(train, val)
        self.map_error = None
        if self.mapping and self.config.replacement == "matched":
            self.map_error = self._calibrate_map_error(train)

    def _calibrate_map_error(self, train, n: int = 256) -> dict:
        """Mapping: the known field's error model, measured on (at most ``n``) seeded train samples in normalised
        units: ``per_obs`` E(k), k = 0..ceil(half_window), the mean square difference between an observation
        k days from a map's day and that map at the observation's cell (noise, representativeness, position
        in the cell and the map's drift in time), and ``rho``, the correlation of the errors of one cell's
        observations that makes the predicted variance of the cell estimates (``known_map``) their mean square
        error on those samples."""
        from .learned.features import cell_index

        nrm, hw = self.learner.norm, float(self.config.half_window)
        pairs = train.training_pairs()
        idx = np.sort(np.random.default_rng(self.seed).choice(pairs.sizes["sample"], min(n, pairs.sizes["sample"]),
                                                              replace=False))
        sub = pairs.isel(sample=idx).load()
        w = train.problem(sub).within(hw)
        o, g = w.obs, w.geometry
        z = torch.as_tensor((sub["target"].values - nrm.state_mean[0]) / nrm.state_std[0]).reshape(len(idx), -1)
        y = (o.values - nrm.state_mean[0]) / nrm.state_std[0]
        err2 = (y - torch.gather(z, 1, cell_index(g, o.positions))) ** 2
        lag = o.times.abs()
        per_obs = []
        for k in range(int(np.ceil(hw)) + 1):
            sel = o.valid & (lag >= k - 0.5) & (lag < k + 0.5)
            per_obs.append(float(err2[sel].mean()) if bool(sel.any()) else (per_obs[-1] if per_obs else 1.0))
        xt, v_ind, v_cor = _cell_estimates(g, o.positions, y, o.times, o.valid, per_obs)
        seen = torch.isfinite(v_ind)
        mse = float(((xt.reshape(len(idx), -1) - z) ** 2)[seen.reshape(len(idx), -1)].sum())
        a, b = float(v_ind[seen].sum()), float(v_cor[seen].sum())
        rho = float(np.clip((mse - a) / max(b - a, 1e-12), 0.0, 1.0))
        return {"per_obs": per_obs, "rho": rho}

    def _calibrate_known_error(self, train, val, n: int = 256) -> list[float]:
        """Per level, the mean square error of the normalised known field against the true normalised
        increment at observed cells, on (at most ``n``) train samples with their drawn densities: a field
        regressed from observations of another variable (SSH -> PV) is far less certain than the observations."""
        from .learned.data import PairsDataModule
        from .learned.features import increment_scale, level_view

        dm = PairsDataModule(train, val, 64, self.seed, max_samples=n)
        g, se, cnt = train.geometry, 0.0, 0.0
        for start in range(0, dm.train_pairs.sizes["sample"], 64):
            idx = torch.arange(start, min(start + 64, dm.train_pairs.sizes["sample"]))
            problem, truth = dm.batch(idx, "cpu", train=True)
            xt, mask = self._known(problem)
            inc = level_view(truth - problem.background, g) / increment_scale(self.learner.norm, g, truth.device)
            obs = (mask > 0).to(torch.float64)
            se = se + (obs * (xt - inc) ** 2).sum(dim=(0, *range(2, xt.ndim)))
            cnt = cnt + obs.sum()
        return [float(v) for v in se / cnt]

    # -- the known field and mask ------------------------------------------------------------------------
    def _known_from_points(self, geometry, positions, values, valid, levels_out: bool, shared: int = 1):
        """(x_tilde (B, C, *grid) in physical units, counts (B, 1, *grid)) from point values (B, P).

        ``shared``: consecutive groups of this many rows have the same positions and valid mask (the members
        of one case), so each group's maps are filled with one triangulation."""
        from .interp import fill_periodic
        from .learned.features import _scatter_mean, cell_index

        g = geometry
        cells = cell_index(g, positions)
        mean, count = _scatter_mean(values, cells, valid, g.n_points)
        xg = g.axis_coords(1)
        filled = []
        for b in range(0, values.shape[0], shared):
            m = np.where(count[b].cpu().numpy() > 0, mean[b:b + shared].cpu().numpy(), np.nan)
            f = fill_periodic(np.moveaxis(m.reshape(shared, *g.shape), 0, -1), xg, g.length[1], 0.0)
            filled.extend(np.moveaxis(f, -1, 0))
        f = torch.as_tensor(np.stack(filled), device=values.device)
        counts = count.reshape(values.shape[0], 1, *g.shape)
        if not levels_out:
            return f[:, None], counts
        dx = torch.fft.irfft2(self.regression.to(f.device) * torch.fft.rfft2(f)[:, None], s=g.shape)
        return dx, counts

    def _known(self, problem, members: int = 1, backgrounds=None):
        """(x_tilde normalised (B K, C, *grid), hard mask (B K, 1, *grid)) of an analysis problem.

        ``members`` K > 1: one known field per member from its own perturbed observations
        (``perturb_obs``), member k of case b at row b K + k; K = 1: the observations as given.
        ``backgrounds`` (B, K, *state): member k's innovations are taken about its own background
        (``cycle_condition="member"``) instead of the ensemble mean."""
        from .learned.features import increment_scale, innovations, level_view

        g = problem.geometry
        xb = problem.background.mean(1) if problem.ensemble else problem.background
        valid, positions = problem.obs.valid, problem.obs.positions
        if backgrounds is None:
            d = innovations(problem, xb).repeat_interleave(members, 0)
        else:
            d = (problem.obs.values[:, None] - problem.H(backgrounds)).reshape(-1, problem.obs.P)
        valid, positions = valid.repeat_interleave(members, 0), positions.repeat_interleave(members, 0)
        if members > 1 and self._perturb:
            gen = torch.Generator().manual_seed(int(self.seed) * 104729 + self.stats["samples"])
            R = problem.obs.error_var(self.config.obs_error).repeat_interleave(members, 0)
            d = d + R.sqrt() * torch.randn(d.shape, generator=gen, dtype=torch.float64).to(d.device)
        d = torch.where(valid, d, torch.zeros_like(d))
        n = d.shape[0]
        if problem.H.selection:
            xt = level_view(d.reshape(n, *xb.shape[1:]), g)
            mask = valid.reshape(n, 1, *g.shape).to(torch.float64)
        else:
            xt, mask = self._known_from_points(g, positions, d, valid, True, members)
        return xt / increment_scale(self.learner.norm, g, xt.device), mask

    # -- sampling ------------------------------------------------------------------------------------------
    @property
    def _perturb(self) -> bool:
        c = self.config
        on = c.replacement == "blend" if c.perturb_obs is None else bool(c.perturb_obs)
        return on and c.members > 1

    def _obs_to_background(self, problem) -> float:
        """R / var(H xb - H xt): the observation error over the background error, observation space, train split."""
        r = float(problem.obs.error_var(self.config.obs_error)[problem.obs.valid].mean())
        return r / max(self.learner.norm.innov_std ** 2 - r, 1e-12 * r)

    def _mask_weight(self, problem) -> float:
        w = self.config.mask_weight
        if w != "kalman":
            return float(w)
        return float(np.clip(1.0 / (1.0 + self._obs_to_background(problem)), 0.05, 1.0))

    def _error_var(self, problem, counts):
        """x_tilde's error variance per cell (normalised), for the matched replacement: observations of the
        state, r / count with r the observation error over the background's; a regressed field, its error
        measured on train (``known_error``, per level); cells without observations never (inf)."""
        if getattr(self, "known_error", None) is not None:
            r = torch.as_tensor(self.known_error, dtype=counts.dtype, device=counts.device)
            r = r.reshape(1, -1, *[1] * (counts.ndim - 2))
            return torch.where(counts > 0, r, torch.full_like(r, float("inf")))
        r = self._obs_to_background(problem)
        return torch.where(counts > 0, r / counts.clamp_min(1.0), torch.full_like(counts, float("inf")))

    def _sample(self, cond, x_tilde, mask, shape, obs_op=None, y=None, R=None, weight=1.0, per_member=False,
                error_var=None, draws=None):
        """``draws`` samples per row of ``cond`` (default ``members``); ``per_member``: x_tilde and mask
        already hold one row per draw (B M)."""
        parts = self.learner.parts
        M = self.config.members if draws is None else int(draws)
        rep = (lambda a: None if a is None else a.repeat_interleave(M, 0))
        rep_known = (lambda a: a) if per_member else rep
        den = parts.denoiser(self.learner.model, rep(cond))
        gen = torch.Generator().manual_seed(int(self.seed) * 7919 + self.stats["samples"])
        t0 = time.perf_counter()
        out = parts.sample(den, (shape[0] * M, *shape[1:]), gen, x_tilde=rep_known(x_tilde).to(torch.float32),
                           hard_mask=rep_known(mask).to(torch.float32), obs_op=obs_op, y=rep(y), R=rep(R),
                           mask_weight=weight,
                           error_var=None if error_var is None else rep_known(error_var).to(torch.float32))
        self.stats["replacement"] = "blend" if error_var is None else "matched"
        if error_var is None:
            self.stats["mask_weight"] = float(weight)
        self.stats["sampling_seconds"] += time.perf_counter() - t0
        self.stats["samples"] += shape[0] * M
        self.stats["nfe_per_sample"] = int(out.nfe)
        return out.sample.to(torch.float64).reshape(shape[0], M, *shape[1:])

    def predict(self, problem):
        from .learned.features import increment_scale

        self.learner.eval()
        with torch.no_grad():
            if not hasattr(problem, "background"):
                return self._predict_map(problem)
            g = problem.geometry
            xb = problem.background.mean(1) if problem.ensemble else problem.background
            by_member = problem.ensemble and self.config.cycle_condition == "member"
            if by_member:
                B, M = problem.background.shape[:2]
                rows = problem.background.reshape(B * M, *problem.background.shape[2:])
                cond = self.learner.condition(problem.with_background(rows))
                xt, mask = self._known(problem, M, backgrounds=problem.background)
                draws, per_member = 1, True
            else:
                M = self.config.members
                cond = self.learner.condition(problem)  # an ensemble background conditions through its mean
                per_member = self._perturb
                xt, mask = self._known(problem, M if per_member else 1)
                draws = None
            matched = self.config.replacement == "matched"
            scale = increment_scale(self.learner.norm, g, xb.device)
            obs_op = y = R = None
            if "dps" in self.config.guidance:
                if not by_member:
                    rows = xb.repeat_interleave(M, 0)
                obs_op = (lambda z: problem_rep_H(problem, M)(rows + (z.to(torch.float64) * scale).reshape(rows.shape)))
                y, R = problem.obs.filled(), problem.obs.error_var(self.config.obs_error)
                R = torch.where(problem.obs.valid, R, torch.full_like(R, float("inf")))  # padding: no likelihood
                if by_member:
                    y, R = y.repeat_interleave(M, 0), R.repeat_interleave(M, 0)
            with torch.enable_grad() if obs_op is not None else torch.no_grad():
                inc = self._sample(cond, xt, mask, (cond.shape[0], g.n_levels, *g.shape), obs_op, y, R,
                                   1.0 if matched else self._mask_weight(problem), per_member,
                                   self._error_var(problem, mask) if matched else None, draws)
            if by_member:
                xa = problem.background + (inc[:, 0] * scale).reshape(problem.background.shape)
            else:
                xa = xb[:, None] + (inc * scale[:, None]).reshape(xb.shape[0], -1, *xb.shape[1:])
            if problem.cycle is not None and not self.config.cycle_members:
                return problem.result(xa.mean(1))
            return problem.result(xa)

    def _predict_map(self, problem):
        import dataclasses

        n = self.learner.norm
        maps = []
        for start in range(0, len(problem.times), 16):
            sub = dataclasses.replace(problem, times=problem.times[start:start + 16])
            w = sub.windows(self.config.half_window)
            shape = (len(sub.times), 1, *problem.geometry.shape)
            if self.map_error is not None:
                xt, var = self.known_map_of(w)
                s = self._sample(None, xt, torch.isfinite(var).to(xt.dtype), shape, error_var=var)
            else:
                vals = (w.obs.values - n.state_mean[0]) / n.state_std[0]
                xt, mask = self._known_from_points(w.geometry, w.obs.positions, vals, w.obs.valid, False)
                s = self._sample(None, xt, mask, shape)
            maps.append(n.state_mean[0] + n.state_std[0] * s[:, :, 0])
        m = torch.cat(maps)                                         # (T, M, ny, nx)
        ds = problem.result(m.mean(1))
        return ds  # mapping is scored deterministically: the ensemble mean

    def known_map_of(self, window_problem):
        """(x_tilde, its error variance), normalised, (B, 1, *grid), of a ``WindowProblem``'s days (``known_map``
        with the train-measured error model; matched replacement only)."""
        n, o = self.learner.norm, window_problem.obs
        vals = (o.values - n.state_mean[0]) / n.state_std[0]
        return known_map(window_problem.geometry, o.positions, vals, o.times, o.valid, **self.map_error)

    def describe(self) -> dict:
        c = self.config
        return {"training": self.record, "members": c.members, "conditioning": c.guidance,
                "sampler": f"{c.sampler} (eta {c.eta}), {c.n_steps} steps, jump {c.jump_length} x {c.n_resample}",
                "network_evaluations_per_sample": self.stats.get("nfe_per_sample"),
                "sampling_seconds": round(self.stats.get("sampling_seconds", 0.0), 2),
                "samples_drawn": self.stats.get("samples"), "cycle_members": c.cycle_members,
                "cycle_condition": c.cycle_condition,
                "replacement": self.stats.get("replacement", c.replacement),
                **({"known_field_error_var": [round(v, 4) for v in self.known_error]}
                   if getattr(self, "known_error", None) else {}),
                **({"half_window_days": c.half_window, "known_map_obs_error_var": [round(v, 4) for v in
                                                                                  self.map_error["per_obs"]],
                    "known_map_error_correlation": round(self.map_error["rho"], 4)}
                   if getattr(self, "map_error", None) is not None else {}),
                **({"mask_weight": self.stats["mask_weight"]} if "mask_weight" in self.stats else {}),
                "perturbed_observations": self._perturb}


def problem_rep_H(problem, M: int):
    """The problem's observation operator applied to M samples per batch member: (B M, *state) -> (B M, P)."""
    def H(x):
        x = x.reshape(problem.B, M, *x.shape[1:])
        return problem.H(x).reshape(problem.B * M, -1)
    return H


def _cell_estimates(geometry, positions, values, times, valid, per_obs):
    """Per cell (B, 1, *grid): the inverse-variance weighted mean of its observations (error E(|t_j|), linear
    between whole days, ``per_obs``), and that mean's variance for independent errors (1 / sum w) and for fully
    correlated ones ((sum w sqrt e)^2 / (sum w)^2); cells without observations: 0 and infinite variances."""
    from .learned.features import cell_index

    E = np.asarray(per_obs, dtype=np.float64)
    e = torch.as_tensor(np.interp(times.abs().cpu().numpy(), np.arange(len(E)), E), dtype=values.dtype,
                        device=values.device)
    wgt = torch.where(valid, 1.0 / e, torch.zeros_like(values))
    cells = cell_index(geometry, positions)
    B, n = values.shape[0], geometry.n_points

    def per_cell(a):
        return torch.zeros(B, n, dtype=values.dtype, device=values.device).scatter_add_(1, cells, a)

    sw = per_cell(wgt)
    seen, safe = sw > 0, sw.clamp_min(torch.finfo(values.dtype).tiny)
    inf = torch.full_like(sw, float("inf"))
    xt = torch.where(seen, per_cell(wgt * values) / safe, torch.zeros_like(sw))
    v_ind = torch.where(seen, 1.0 / safe, inf)
    v_cor = torch.where(seen, (per_cell(wgt * e.sqrt()) / safe) ** 2, inf)
    shape = (B, 1, *geometry.shape)
    return xt.reshape(shape), v_ind.reshape(shape), v_cor.reshape(shape)


def known_map(geometry, positions, values, times, valid, per_obs, rho):
    """(x_tilde, its error variance) (B, 1, *grid) of a map from point observations at ``times`` (B, P), days from
    the map's day: cell estimates (``_cell_estimates``) with variance rho v_correlated + (1 - rho) v_independent
    (``DiffDA._calibrate_map_error`` measures E and rho on the train split); infinite where nothing is observed."""
    xt, v_ind, v_cor = _cell_estimates(geometry, positions, values, times, valid, per_obs)
    seen = torch.isfinite(v_ind)
    var = torch.where(seen, rho * v_cor.where(seen, 0.0) + (1.0 - rho) * v_ind.where(seen, 0.0), v_ind)
    return xt, var
