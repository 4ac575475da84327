"""``letkf``: local ensemble transform Kalman filter (Hunt et al. 2007).

One ETKF analysis per grid point n (all levels of a grid column share it), in
which the observation precisions are tapered with the periodic distance
between the point and each observation: R_n^-1 = R^-1 GC(d(n, p); r), with
the Gaspari-Cohn function (``baselines.core.localization``; radius r quoted as
in Sakov's and DAPPER's codes: the taper is exp(-1/2) at distance r and zero
beyond 3.48 r). With Y the inflated observation-space anomalies,
C_n = Y^T R_n^-1 Y and q_n = Y^T R_n^-1 (y - H xm); the mean weights w_n and
the symmetric square-root transform W_n come from one batched eigh per point
(``ensemble_transform.transform``), and the analysis ensemble is
xm_n + A_n (w_n + W_n). C_n for every point at once is one matrix product of
the tapered precisions (N x P) with the per-observation outer products
(P x M^2), in chunks bounded in memory. Multiplicative prior inflation of the
anomalies.

Analysis variable: where the world offers a smooth linear transform of the
state (``problem.transforms["streamfunction"]``: PV -> streamfunction), the
local weights are applied to it and the result transformed back; applying
localised weights to PV itself (a Laplacian of psi) puts grid-scale noise
into the analysis (on the QG small val split that filter drifted and
diverged within 150-250 cycles at every inflation tried, while the
streamfunction filter stays stable).

Cold start (cycle 0, a background without members), by geometry: a ring (a
small state) gets M draws from the Gaussian posterior with the climatological
prior (the dense training covariance); a 2-D grid the background plus the
centred anomalies of M random training states, then a regular LETKF analysis.

Defaults by geometry (``DEFAULTS``): on a ring (Lorenz-96) 8 members, the
literature's LETKF size (DAPPER's LETKF N = 7, inflation 1.04, radius 4 gives
0.22 on Sakov & Oke's setup); on 2-D grids 20 members (40 gave no gain on QG
val). Inflation and radius (in grid spacings) are tuned jointly on the val
split, all pairs cycled at once as one batch of trials.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from .base import Config, Method, Supports
from .core import tuning

torch = lazy.load("torch")

DEFAULTS = {
    "ring": dict(members=8, inflation_grid=(1.02, 1.04, 1.06, 1.08, 1.11), radius_grid=(1.5, 2.0, 3.0, 4.0, 5.0, 6.0)),
    "periodic2d": dict(members=20, inflation_grid=(1.02, 1.05, 1.1), radius_grid=(0.5, 0.8, 1.3, 1.9, 2.9)),
}


@dataclass
class LETKFConfig(Config):
    #: None: the geometry's default (``DEFAULTS``)
    members: int | None = None
    inflation_grid: tuple | None = None
    #: localisation radii in grid spacings; None: the geometry's default
    radius_grid: tuple | None = None
    #: "auto" (the streamfunction where the world offers it), "state" or "streamfunction"
    analysis_variable: str = "auto"


def letkf_analysis(problem, X, infl, radius, rinv, transform=None, max_bytes: float = 3e8):
    """LETKF analysis ensemble (B, M, *state) of members X (B, M, *state) (see module doc).

    ``infl`` (B,); ``radius`` (B,) in the geometry's units; ``rinv`` (B, P); ``transform``: an
    optional (forward, inverse) pair for the analysis variable.
    """
    from .core.ensemble_transform import transform as etkf_transform
    from .core.localization import taper

    g = problem.geometry
    B, M = X.shape[:2]
    N = g.n_points
    HX = problem.H(X)                                     # (B, M, P)
    Z = X if transform is None else transform.forward(X)
    zm = Z.mean(1)
    A = (Z - zm[:, None]) * infl.view(-1, *[1] * (Z.ndim - 1))
    Hm = HX.mean(1)
    Y = (HX - Hm[:, None]) * infl[:, None, None]
    d = problem.obs.filled() - Hm
    grid = torch.as_tensor(g.positions(), device=X.device)            # (N, ndim)
    P = Y.shape[-1]
    levels = g.n_levels
    out = torch.empty_like(Z)
    chunk = max(1, int(max_bytes // (8.0 * N * (P + 2 * M * M))))
    pos = problem.obs.positions
    for s in range(0, B, chunk):
        sl = slice(s, s + chunk)
        dist = g.distance(grid[None, :, None, :], pos[sl, None, :, :])   # (b, N, P)
        Rl = taper(dist, radius[sl, None, None]) * rinv[sl, None, :]
        Ys = Y[sl]
        outer = torch.einsum("bmp,bkp->bpmk", Ys, Ys).reshape(Ys.shape[0], P, M * M)
        C = torch.bmm(Rl, outer).reshape(-1, N, M, M)
        q = torch.einsum("bnp,bmp->bnm", Rl * d[sl, None, :], Ys)
        w, W = etkf_transform(C, q)
        T = W + w[..., None]                                   # (b, N, M, K)
        Af = A[sl].reshape(-1, M, levels, N)
        za = zm[sl].reshape(-1, 1, levels, N) + torch.einsum("bmln,bnmk->bkln", Af, T)
        out[sl] = za.reshape(out[sl].shape)
    return out if transform is None else transform.inverse(out, X)


class LETKF(Method):
    name = "letkf"
    summary = "LETKF (Hunt et al. 2007), Gaspari-Cohn localisation; inflation and radius tuned on val"
    supports = Supports(families=("cycling",))
    Config = LETKFConfig
    reference = "Hunt, Kostelich & Szunyogh (2007, Physica D); Bocquet (2011); DAPPER LETKF"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inflation = 1.0
        self.radius = 4.0

    def _setting(self, key: str, geometry):
        v = getattr(self.config, key)
        return DEFAULTS[geometry.kind][key] if v is None else v

    def fit(self, train, val) -> None:
        from .core.covariance import StateCovariance

        g = train.geometry
        self.geometry = g
        self.members = int(self._setting("members", g))
        x = train.states()
        self.states = x
        self.cov = StateCovariance.from_samples(x.reshape(len(x), -1)).to(self.device) if g.kind == "ring" else None
        spacing = float(np.mean(g.spacing))
        radii = tuple(float(r) * spacing for r in self._setting("radius_grid", g))
        self.tuning = tuning.batched(self, val, {"inflation": self._setting("inflation_grid", g), "radius": radii},
                                     label="letkf", progress=self.progress)

    def _transform(self, problem):
        choice = self.config.analysis_variable
        if choice == "state":
            return None
        t = problem.transforms.get("streamfunction")
        if choice == "streamfunction" and t is None:
            raise ValueError("this problem offers no streamfunction transform")
        return t

    def predict(self, problem):
        from .core.ensemble_transform import anomaly_ensemble, posterior_draws

        rinv = self.rinv(problem)
        X = problem.background
        if not problem.ensemble:
            if self.cov is not None:
                return problem.result(posterior_draws(X, problem.obs.filled(), rinv, problem.H, self.cov,
                                                      self.members, self.seed))
            X = anomaly_ensemble(X, self.states, self.members, self.seed)
        Xa = letkf_analysis(problem, X, problem.param(self.inflation), problem.param(self.radius), rinv,
                            self._transform(problem))
        return problem.result(Xa)

    def describe(self) -> dict:
        return {"members": self.members, "inflation": self.inflation,
                "localisation_radius": self.radius, "radius_units": self.geometry.units,
                "taper": "Gaspari-Cohn of R^-1 by periodic distance, exp(-1/2) at the radius, zero beyond 3.48 radii",
                "inflation_convention": "prior anomalies multiplied by inflation",
                "cold_start": ("draws from the posterior with the climatological prior (training covariance)"
                               if self.cov is not None else f"background + centred anomalies of {self.members} random "
                               "training states, then an LETKF analysis"),
                "analysis_variable": self.config.analysis_variable}
