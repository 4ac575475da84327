"""``oi``: optimal interpolation with a Gaussian covariance, solved in observation space (the ODC baseline).

Mapping (the ocean data challenge 2020a baseline): the anomaly of the observed
field (observations minus the training climatological mean, constant in space
by homogeneity) has the space-time covariance

    C(dr, dt) = var * exp(-dr^2 / Lx^2 - dt^2 / Lt^2)      (periodic distances dr)

and the observations the error variance ``R_i = sigma_i^2 / n_i + sigma_r^2 +
noise * var``: the instrument noise of a super-observation of n_i points, the
representativeness error stated by the problem (correlated within a cell, so
it does not average down) and a tuned dimensionless ``noise`` (the ODC
baseline's). ``var`` is the training anomaly variance. The observations are
first averaged into super-observations per (time, grid cell)
(``challenges.gridding.superobs``), which loses nothing the grid can hold and
makes the systems small. Days share factorisations in blocks, and many
observations are analysed in local patches (``baselines.core.gaussian_oi``).
The maps are finally passed through the problem's ``smoothing`` (the truth is
the filtered field while the observations sample the fine-scale field, and
the best estimate of a filtered field is the filtered best estimate).

One-step DA (and forecasts): the same Gaussian covariance in space only, for
the background error of the observed field: ``var = alpha * var_b`` with
``var_b`` the observed-field variance of the training background errors,
``R_i = sigma_i^2 + sigma_r^2``; innovations ``y - H(xb)`` with the problem's H.
The analysed field increment (on the grid) becomes a state increment of every
level by the B-regression of the training background errors (per isotropic
wavenumber, the minimum-B-norm state increment with exactly that field
increment: ``SpectralCovariance.field_regression``).

Tuning (never on test): Lx, Lt, noise (mapping) or Lx, alpha (DA) by a
coordinate search on the val split (``baselines.core.tuning.coordinate``),
minimising the split's primary error; ``tune=false`` takes the starting point
as given. Periodic 2-D grids with point
observations.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import lazy_loader as lazy
import numpy as np

from .base import Config, Method, Supports
from .core import tuning

torch = lazy.load("torch")


@dataclass
class OIConfig(Config):
    #: mapping: starting point and candidates of the coordinate search (km, days, dimensionless)
    map_start: dict = field(default_factory=lambda: dict(Lx=45.0, Lt=15.0, noise=0.1))
    map_grid: dict = field(default_factory=lambda: dict(
        Lx=(25.0, 35.0, 45.0, 60.0, 80.0, 110.0), Lt=(3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0),
        noise=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)))
    #: one-step DA: starting point and candidates (km, dimensionless)
    da_start: dict = field(default_factory=lambda: dict(Lx=80.0, alpha=1.0))
    da_grid: dict = field(default_factory=lambda: dict(Lx=(12.0, 18.0, 25.0, 35.0, 50.0, 70.0, 100.0, 150.0),
                                                       alpha=(0.1, 0.25, 0.5, 1.0, 2.0, 4.0)))
    #: tune on val (False: use ``map_start`` / ``da_start`` as given)
    tune: bool = True
    #: a mapping system goes local (patches) above ``max_obs`` observations and never exceeds ``cap``
    max_obs: int = 2000
    cap: int = 4000


class OI(Method):
    name = "oi"
    summary = "optimal interpolation, Gaussian space(-time) covariance (ODC 2020a baseline), Cholesky in obs space"
    supports = Supports(families=("mapping", "analysis", "forecast"), geometries=("periodic2d",), observes=("points",))
    Config = OIConfig
    reference = "Le Traon et al. (1998); ocean data challenge 2020a baseline OI"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params = {}
        self.stats = {}
        self._superobs_cache = {}

    def fit(self, train, val) -> None:
        g = train.geometry
        self.L, self.xg = g.length[0], g.axis_coords(0)
        cfg = self.config
        if train.family == "mapping":
            maps = train.states()
            self.mean = float(maps.mean())
            self.stats.update(mean=self.mean, var=float(((maps - self.mean) ** 2).mean()))
            self.tuning = self._tune(lambda p: val.evaluate(lambda prob: self._predict_map(prob, p)),
                                     cfg.map_start, cfg.map_grid, "oi (mapping)")
        else:
            from .core.spectral_covariance import SpectralCovariance

            xb, xt = train.pairs()
            self.B = SpectralCovariance.from_samples(xb - xt, device=self.device)
            t = train.field_map.transfer.to(self.device)
            self.regression = self.B.field_regression(t)
            self.stats.update(var_b_field=self.B.field_variance(t), n_error_samples=len(xb))
            self.tuning = self._tune(lambda p: val.evaluate(lambda prob: self._analyse(prob, p)),
                                     cfg.da_start, cfg.da_grid, "oi (DA)")
        self.params = dict(self.tuning["best"])

    def _tune(self, evaluate, start: dict, grid: dict, label: str) -> dict:
        """The coordinate search from ``start`` over ``grid`` on val, or ``start`` as given (``tune=false``)."""
        if not self.config.tune:
            return tuning.fixed(start)
        return tuning.coordinate(evaluate, start, grid, label=label, progress=self.progress)

    # -- mapping ---------------------------------------------------------------------------------
    def _superobs(self, problem) -> dict:
        from challenges import gridding

        key = id(problem.obs)
        if key not in self._superobs_cache:
            o = problem.obs
            pos = o.positions[0].cpu().numpy()
            so = gridding.superobs(o.times[0].cpu().numpy(), pos[:, 1], pos[:, 0], o.values[0].cpu().numpy() - self.mean,
                                   o.sigma[0].cpu().numpy(), len(self.xg), L=self.L)
            if self.config.obs_error == "total":
                so["sigma"] = np.sqrt(so["sigma"] ** 2 + o.sigma_repr ** 2)
            self._superobs_cache[key] = (problem.obs, so)
        return self._superobs_cache[key][1]

    def _predict_map(self, problem, p: dict):
        from .core.gaussian_oi import map_oi

        est = map_oi(self._superobs(problem), problem.times, self.xg, self.L, p["Lx"], p["Lt"], self.stats["var"],
                     p["noise"], max_obs=self.config.max_obs, cap=self.config.cap, device=self.device)
        if problem.smoothing is not None:
            est = problem.smoothing(est)
        return problem.result(est + self.mean)

    # -- one-step DA -------------------------------------------------------------------------------
    def _analyse(self, problem, p: dict):
        from .core.gaussian_oi import solve_gaussian_oi

        if problem.ensemble:
            raise ValueError("oi takes a deterministic background")
        o = problem.obs
        g = problem.geometry
        d = o.filled() - problem.H(problem.background)
        xg = torch.as_tensor(self.xg, device=self.device).expand(problem.B, -1)
        oy, ox = o.positions[..., 0], o.positions[..., 1]
        var = p["alpha"] * self.stats["var_b_field"]
        df = solve_gaussian_oi(ox, oy, torch.zeros_like(ox), d, self.error_var(o), o.valid, xg, xg, None, p["Lx"],
                               None, var, self.L)[:, 0]
        dx = torch.fft.irfft2(self.regression * torch.fft.rfft2(df)[:, None], s=g.shape)
        return problem.result(problem.background + dx)

    def predict(self, problem):
        if hasattr(problem, "background"):
            return self._analyse(problem, self.params)
        return self._predict_map(problem, self.params)

    def describe(self) -> dict:
        return {"params": self.params, "stats": self.stats,
                "solver": f"Cholesky per (block of days, patch); global up to {self.config.max_obs} obs, at most "
                          f"{self.config.cap} obs per system (nearest in normalised distance)"}
