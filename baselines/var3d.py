"""``3dvar``: variational analysis with a static B, minimised in control space.

    x = xb + U v,   U = sqrt(s) B^{1/2}
    J(v) = 1/2 |v|² + 1/2 (y - H(xb + U v))^T R^-1 (y - H(xb + U v))

H is the problem's linear observation operator and R = sigma² + sigma_r²
(diagonal), so J is quadratic; its minimiser solves
(I + U^T H^T R^-1 H U) v = U^T H^T R^-1 (y - H xb), solved by batched
conjugate gradients (``baselines.core.krylov.cg``): a real iterative
minimisation, matrix-free, not the closed-form Kalman update.

B, estimated on the TRAIN split only, by geometry:

- a small state on a ring (Lorenz-96): a dense matrix (``StateCovariance``);
- a doubly periodic 2-D grid (QG): homogeneous, isotropic, diagonal in
  Fourier space and multivariate between levels (``SpectralCovariance``), so an
  observation of a derived field (SSH) updates every level; U and the field
  part of H combine into one spectral multiplication.

B's shape: one-step problems (analysis, forecast): the covariance of the
training cases' background errors (background - truth; the "NMC" idea with
the true errors, which the training split has). Cycling: the better on val of
the climatological anomaly covariance of training states (DAPPER's ``Var3D``
for the Sakov & Oke 2008 benchmark, whose tuned scale 0.02 gives RMSE 0.41)
and the covariance of one-cycle forecast errors from the training truth (left
out where the model is perfect and they vanish), each normalised to the
observed-field variance of the climatological one so that one scale grid
serves both.

The scale s is tuned on the VAL split by a log-spaced grid search, all values
in one batched validation run (``baselines.core.tuning.batched``). The grids
and the CG tolerance depend on the covariance model (``DEFAULTS``). Batched
over experiments; float64; runs on ``self.device``.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from .base import Config, Method, Supports
from .core import tuning

torch = lazy.load("torch")

#: per covariance model: scale grids (one-step, cycling), CG relative tolerance and maximum iterations
DEFAULTS = {
    "dense": dict(one_step_grid=tuple(np.geomspace(0.25, 4.0, 9)), cycling_grid=tuple(np.geomspace(0.005, 0.2, 11)),
                  tol=1e-8, maxiter=None),
    "spectral": dict(one_step_grid=tuple(np.geomspace(0.25, 8.0, 11)),
                     cycling_grid=tuple(np.geomspace(0.005, 4.0, 13)), tol=1e-6, maxiter=500),
}


@dataclass
class Var3DConfig(Config):
    #: scale grids; None: the covariance model's defaults (``DEFAULTS``)
    one_step_grid: tuple | None = None
    cycling_grid: tuple | None = None
    #: CG relative residual; None: the covariance model's default
    tol: float | None = None


def covariance_model(geometry) -> str:
    """"dense" for a ring (small state), "spectral" for a doubly periodic 2-D grid."""
    return "spectral" if geometry.kind == "periodic2d" else "dense"


def estimate_B(samples: np.ndarray, geometry, device, center: bool):
    """B of ``samples`` (n, *state_shape) in the geometry's covariance model."""
    from .core.covariance import StateCovariance
    from .core.spectral_covariance import SpectralCovariance

    if covariance_model(geometry) == "dense":
        return StateCovariance.from_samples(samples.reshape(len(samples), -1), center=center).to(device)
    x = samples - samples.mean(0, keepdims=True) if center else samples
    return SpectralCovariance.from_samples(x, device=device)


def field_variance(B, field_map) -> float:
    """Pointwise variance of the observed field under B (homogeneous: its mean over the grid)."""
    if hasattr(B, "field_variance") and field_map.transfer is not None:
        return B.field_variance(field_map.transfer.to(B._P.device))
    return float(B.variance().mean())


def field_sqrt(B, field_map):
    """v -> field(B^{1/2} v) for control vectors (N, n): one spectral product when both are spectral."""
    g = field_map.geometry
    if hasattr(B, "field_gain") and field_map.transfer is not None:
        gain = B.field_gain(field_map.transfer.to(B._S.device))

        def apply(v):
            vh = torch.fft.rfft2(v.view(v.shape[0], *g.state_shape))
            return torch.fft.irfft2((gain * vh).sum(1), s=g.shape)

        return apply
    return lambda v: field_map(B.sqrt_apply(v).view(v.shape[0], *g.state_shape))


def field_sqrt_T(B, field_map):
    """The adjoint of ``field_sqrt``: field-space (N, *grid) -> control vectors (N, n)."""
    g = field_map.geometry
    if hasattr(B, "field_gain") and field_map.transfer is not None:
        gain = B.field_gain(field_map.transfer.to(B._S.device))

        def apply(f):
            fh = torch.fft.rfft2(f)
            return torch.fft.irfft2(gain * fh[:, None], s=g.shape).reshape(f.shape[0], -1)

        return apply
    return lambda f: B.sqrt_apply_T(field_map.adjoint(f).reshape(f.shape[0], -1))


def var3d_analysis(problem, B, scale, rinv, tol: float, maxiter=None):
    """Batched 3D-Var analysis (B_batch, *state) of a deterministic-background problem; and CG iterations."""
    from .core.krylov import cg

    H, g = problem.H, problem.geometry
    xb = problem.background
    nb = xb.shape[0]
    s = scale.sqrt()[:, None]
    F, FT = field_sqrt(B, H.field), field_sqrt_T(B, H.field)

    def G(v):
        return s * H.sample(F(v))

    def GT(w):
        return s * FT(H.sample_adjoint(w))

    d = problem.obs.filled() - H(xb)
    v, it, _ = cg(lambda p: p + GT(rinv * G(p)), GT(rinv * d), tol=tol, maxiter=maxiter)
    dx = s * B.sqrt_apply(v).reshape(nb, -1)
    return xb + dx.view(xb.shape), it


class Var3D(Method):
    name = "3dvar"
    summary = "3D-Var, static B from training, control variable x = xb + B^1/2 v, CG minimisation"
    supports = Supports(families=("analysis", "cycling", "forecast"))
    Config = Var3DConfig
    reference = "Sakov & Oke (2008); DAPPER Var3D; Courtier et al. (1998, QJRMS)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.B = None
        self.scale = 1.0
        self.b_source = ""
        self._iters = []

    def _defaults(self, geometry) -> dict:
        d = dict(DEFAULTS[covariance_model(geometry)])
        for k in ("one_step_grid", "cycling_grid", "tol"):
            if getattr(self.config, k) is not None:
                d[k] = getattr(self.config, k)
        return d

    def fit(self, train, val) -> None:
        g = train.geometry
        self.settings = self._defaults(g)
        if train.family == "cycling":
            clim = train.states()
            candidates = {"clim": (clim, True), "fc": (train.forecast_errors(), False)}
            ref = field_variance(estimate_B(clim, g, self.device, True), train.field_map)
            best = None
            self.tuning = {}
            grid = self.settings["cycling_grid"]
            for kind, (samples, center) in candidates.items():
                B = estimate_B(samples, g, self.device, center)
                var = field_variance(B, train.field_map)
                if not var > 1e-12 * ref:
                    self.tuning[kind] = {"skipped": "no error variance (a perfect model)"}
                    continue
                self.B = B if kind == "clim" else B.scaled(ref / var) if hasattr(B, "scaled") else _scaled(B, ref / var)
                rec = tuning.batched(self, val, {"scale": grid}, label=f"3dvar B={kind}", progress=self.progress)
                self.tuning[kind] = rec
                if best is None or rec["val_loss"] < best[0]:
                    best = (rec["val_loss"], kind, rec["best"]["scale"], self.B, len(samples))
            _, kind, self.scale, self.B, n = best
            self.tuning["chosen"] = kind
            self.tuning["edge"] = self.tuning[kind]["edge"]
            self.b_source = (f"{'climatological anomaly' if kind == 'clim' else 'one-cycle forecast-error'} "
                             f"covariance of {n} training samples ({covariance_model(g)})")
        else:
            xb, xt = train.pairs()
            self.B = estimate_B(xb - xt, g, self.device, center=False if covariance_model(g) == "spectral" else True)
            self.b_source = f"covariance of {len(xb)} training background errors (background - truth; {covariance_model(g)})"
            self.tuning = tuning.batched(self, val, {"scale": self.settings["one_step_grid"]}, label="3dvar",
                                         progress=self.progress)
        self._iters = []

    def predict(self, problem):
        if problem.ensemble:
            raise ValueError("3dvar takes a deterministic background")
        xa, it = var3d_analysis(problem, self.B, problem.param(self.scale), self.rinv(problem),
                                tol=self.settings["tol"], maxiter=self.settings.get("maxiter"))
        self._iters.append(it)
        return problem.result(xa)

    def describe(self) -> dict:
        return {"B": self.b_source, "scale": self.scale,
                "solver": f"CG on the control-space Hessian, relative residual {self.settings['tol']:g}",
                "mean_cg_iterations": float(np.mean(self._iters)) if self._iters else None}


def _scaled(B, factor: float):
    from .core.covariance import StateCovariance

    return StateCovariance(B.matrix * factor, mean=B.mean, n_samples=B.n_samples)
