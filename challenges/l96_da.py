"""``l96-da``: one-step data assimilation on Lorenz-96 (N = 40, F = 8), and the pieces the L96 challenges share.

The model is perfect (the truth is the same RK4 model), so a 48 h forecast
from the exact truth has no error. The background is therefore a 48 h
(8-step) forecast from a perturbed truth::

    xb(t) = M_48h( x(t - 48 h) + eps ),   eps ~ N(0, sigma0² I),  sigma0 = 0.4

sigma0 = 0.4 is about the analysis error of cycled 3D-Var in the Sakov & Oke
(2008) setup, so the background is a 48 h forecast from a 3D-Var-quality
analysis; its error has grown along the unstable directions of the flow
(flow-dependent) to an RMSE of about 0.9, comparable to the observation error
(sigma = 1), so background and observations carry similar weight. eps is
seeded per split and trajectory: the same cases every time.

Observations: the dataset's observations of x(t) (R = I), of a fraction of
the 40 variables. Densities swept: 100 %, 50 %, 25 %, 10 % (40, 20, 10, 4
observed variables). Network ``"random"`` (default): a new seeded random
subset for every case; ``"fixed"``: evenly spaced indices
(``data_scripts.obs.l96_indices``), the same for all cases.

Cases: analysis times every ``stride`` steps (5 days, longer than the error
decorrelation time, on test and val; every 24 h on train for more learning
data) from t = 48 h to 48 h before the end of each trajectory (so ``l96-fc48``
verifies the same cases), for every density: ``case`` is (density, traj,
time) flattened, density-major, with those as coordinates on ``case``.

A method receives, per density, one batch of cases: ``background(case, i)``,
``y(case, i)`` (NaN where unobserved), ``obs_mask(case, i)``, ``sigma``. Its
prediction is ``x(case, i)``, optionally with a ``member`` dim (an ensemble).
``fit`` gets the train and val cases in the same format plus ``x_true(case, i)``.

Metrics (ensemble mean for members): RMSE pooled over all cases of the sweep
(primary); µ = 1 - RMSE / RMS(truth - climatology) (so climatology scores
about 0); gain = 1 - RMSE(analysis) / RMSE(background); RMSE per density;
CRPS (fair; for a deterministic analysis the CRPS is its mean absolute error);
spread/skill with the finite-ensemble factor sqrt((M+1)/M) (ensembles only);
λx, the smallest wavelength (in grid points) that the analysis resolves:
where 1 - PSD(err)/PSD(truth) along the ring first falls below 0.5.
Intervals: 95 % percentile bootstrap over test cases (``metrics.bootstrap_ci``,
1000 resamples; λx has none).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import xarray as xr

import metrics
from data_scripts.l96 import Lorenz96
from data_scripts.obs import l96_indices
from metrics.spectral import _crossing

from .base import Challenge, Metric, Score

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
MEMBER = "member"
DENSITIES = (1.0, 0.5, 0.25, 0.1)


# -- data shared by the L96 challenges ------------------------------------------


@functools.lru_cache(maxsize=12)
def _read(path: str) -> dict:
    fields = xr.open_zarr(Path(path) / "fields.zarr", consolidated=False)
    obs = xr.open_zarr(Path(path) / "obs.zarr", consolidated=False)
    return {"x": fields.x.values, "y": obs.y_obs.values, "sigma": float(obs.sigma.values),
            "times": fields.time.values, "time_attrs": dict(fields.time.attrs), "i": fields.i.values}


def load_split(challenge: Challenge, size: str, split: str, root=None) -> dict:
    """Truth ``x`` (traj, time, i), dense observations ``y``, ``sigma``, ``times`` of a split (cached, numpy)."""
    return _read(str(challenge.data_dir(size, root) / split))


def climatology(challenge: Challenge, size: str, root=None) -> tuple[np.ndarray, float]:
    """Training-split mean state (i,) and RMS deviation of training states from it."""
    x = load_split(challenge, size, "train", root)["x"]
    mean = x.mean(axis=(0, 1))
    return mean, float(np.sqrt(((x - mean) ** 2).mean()))


def observed_mask(fraction: float, moving: bool, n_rows: int, N: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (n_rows, N) masks of round(fraction N) observed variables: evenly spaced indices
    (``data_scripts.obs.l96_indices``) in every row, or (``moving``) a new random subset per row."""
    n = max(1, round(fraction * N))
    mask = np.zeros((n_rows, N), dtype=bool)
    if moving and n < N:
        np.put_along_axis(mask, np.argsort(rng.random((n_rows, N)), axis=1)[:, :n], True, axis=1)
    else:
        mask[:, l96_indices(N, n=n)] = True
    return mask


# -- scores shared by the L96 challenges -------------------------------------------


def pointwise_errors(pred: xr.DataArray, truth: xr.DataArray, state_dims=("i",)) -> dict:
    """Per-unit (all dims but state and member) error statistics, averaged over the state:
    ``se`` squared error of the (ensemble) mean, ``crps`` fair CRPS (MAE without members),
    ``var`` ensemble variance (ddof 1; absent without members); ``members`` M (1 if none)."""
    ens = pred if MEMBER in pred.dims else pred.expand_dims({MEMBER: 1})
    m = ens.sizes[MEMBER]
    mean = ens.mean(MEMBER)
    out = {"se": ((mean - truth) ** 2).mean(state_dims),
           "crps": metrics.crps(ens, truth, dim=list(state_dims)), "members": m}
    if m > 1:
        out["var"] = ens.var(MEMBER, ddof=1).mean(state_dims)
    return out


def spread_skill_score(se: np.ndarray, var: np.ndarray, m: int) -> Score:
    """sqrt((M+1)/M) · sqrt(mean var) / sqrt(mean se) over units, with its bootstrap interval."""
    f = np.sqrt((m + 1) / m)

    def stat(i=slice(None)):
        return f * np.sqrt(np.mean(var[i]) / np.mean(se[i]))

    return Score(stat(), *metrics.bootstrap_ci(stat, n_cases=len(se)))


def lambda_x(pred_mean: xr.DataArray, truth: xr.DataArray, dim: str = "i") -> Score:
    """Smallest resolved wavelength (grid points) along the periodic ring ``dim``.

    S(k) = 1 - PSD(err)/PSD(truth), spectra averaged over all other dims (no window: the
    ring is periodic; per-line mean removed); λx = the smallest wavelength where S crosses
    0.5 (log-linear interpolation, as ``metrics``' isotropic λ). All scales resolved:
    λx = 2 (flag ``all_resolved``); none: λx = N (flag ``unresolved``).
    """
    s = metrics.score_spectrum(pred_mean, truth, dim=dim, window=False)
    lam, flag = _crossing(s[f"wavelength_{dim}"].values, s.values, 2.0, float(truth.sizes[dim]))
    return Score(lam, extra={} if flag == "ok" else {"flag": flag})


# -- the challenge --------------------------------------------------------------


def _pct(f: float) -> str:
    return f"{round(100 * f)}"


class L96DA(Challenge):
    """One-step DA on Lorenz-96 over a sweep of observation densities (see module doc)."""

    name = "l96-da"
    world = "l96"
    summary = "Lorenz-96 one-step DA: 48 h background + obs -> analysis, obs density 100/50/25/10 %"
    case_dim = "case"
    variables = ("x",)
    #: dims a prediction may add to the template's (an ensemble; scored with CRPS and spread/skill)
    optional_dims = ("member",)
    state_dims = ("i",)
    lead_steps = 8
    stride: ClassVar[dict] = {"train": 4, "val": 20, "test": 20}
    seed = 9601

    def __init__(self, densities=DENSITIES, network: str = "random", sigma0: float = 0.4):
        if network not in ("random", "fixed"):
            raise ValueError(f"network must be 'random' or 'fixed', got {network!r}")
        self.densities = tuple(float(d) for d in densities)
        self.network = network
        self.sigma0 = float(sigma0)
        self.model = Lorenz96()
        self._cache = {}
        self.metrics = (
            Metric("rmse", "RMSE", False),
            Metric("mu", "µ(RMSE)", True),
            Metric("gain", "gain vs background", True),
            *(Metric(f"rmse_obs{_pct(d)}", f"RMSE {_pct(d)} % obs", False) for d in self.densities),
            Metric("crps", "CRPS", False),
            Metric("spread_skill", "spread/skill", False, "{:.2f}", target=1.0),
            Metric("lambda_x", "λx (grid pts)", False, "{:.1f}"),
        )

    def info(self, size: str) -> dict:
        return {**super().info(size), "densities": list(self.densities), "network": self.network,
                "sigma0": self.sigma0, "background": "L96 48 h forecast of truth(t-48h) + N(0, sigma0^2 I)",
                "stride_steps": self.stride, "obs_sigma": 1.0}

    # -- cases ----------------------------------------------------------------
    def case_data(self, size: str, split: str, root=None) -> xr.Dataset:
        """Every case of a split (all densities), with the truth ``x_true``; cached."""
        key = (str(self.data_dir(size, root)), split)
        if key not in self._cache:
            self._cache[key] = self._build(load_split(self, size, split, root), split)
        return self._cache[key]

    def _analysis_steps(self, n_time: int, split: str) -> np.ndarray:
        return np.arange(self.lead_steps, n_time - self.lead_steps, self.stride[split])

    def _build(self, d: dict, split: str) -> xr.Dataset:
        x, yobs = d["x"], d["y"]
        n_traj, n_time, N = x.shape
        steps = self._analysis_steps(n_time, split)
        traj = np.repeat(np.arange(n_traj), len(steps))
        tidx = np.tile(steps, n_traj)
        eps = np.concatenate([np.random.default_rng([self.seed, SPLIT_IDS[split], j]).standard_normal((len(steps), N))
                              for j in range(n_traj)])
        x0 = torch.as_tensor(x[traj, tidx - self.lead_steps] + self.sigma0 * eps)
        xb = self.model.step(x0, self.lead_steps).numpy()
        parts = []
        for k, f in enumerate(self.densities):
            rng = np.random.default_rng([self.seed + 1, SPLIT_IDS[split], k])
            mask = observed_mask(f, self.network == "random", len(traj), N, rng)
            parts.append(xr.Dataset(
                {"background": (("case", "i"), xb),
                 "y": (("case", "i"), np.where(mask, yobs[traj, tidx], np.nan)),
                 "obs_mask": (("case", "i"), mask),
                 "x_true": (("case", "i"), x[traj, tidx])},
                coords={"traj": ("case", traj), "time": ("case", d["times"][tidx]),
                        "step": ("case", tidx), "density": ("case", np.full(len(traj), f))}))
        ds = xr.concat(parts, dim="case")
        ds = ds.assign_coords(case=np.arange(ds.sizes["case"]), i=d["i"])
        ds["sigma"] = ((), d["sigma"], {"long_name": "observation error std"})
        ds["background"].attrs.update(long_name="48 h L96 forecast from the perturbed truth")
        ds["time"].attrs.update(units="days")
        return ds

    def train_val(self, size: str, root=None):
        return self.case_data(size, "train", root), self.case_data(size, "val", root)

    def cases(self, size: str, root=None):
        test = self.case_data(size, "test", root).drop_vars("x_true")
        for f in self.densities:
            yield test.isel(case=np.flatnonzero(test.density.values == f))

    def run(self, method, size: str, root=None, progress=None) -> xr.Dataset:
        preds = []
        for case in self.cases(size, root):
            preds.append(method.predict(case))
            if progress is not None:
                progress(case.sizes["case"])
        return self.assemble(preds, size, root)

    # -- format -----------------------------------------------------------------
    def template(self, size: str, root=None) -> xr.Dataset:
        t = self.truth(size, root)
        return xr.full_like(t, np.nan)

    def truth(self, size: str, root=None) -> xr.Dataset:
        c = self.case_data(size, "test", root)
        return xr.Dataset({"x": c.x_true.assign_attrs(long_name="analysis of the Lorenz-96 state", units="1")},
                          coords={k: c[k] for k in ("case", "i", "traj", "time", "density")})

    # -- scoring ------------------------------------------------------------------
    def score(self, pred: xr.Dataset, size: str, root=None) -> dict[str, Score]:
        c = self.case_data(size, "test", root)
        truth = c.x_true
        x = pred["x"].assign_coords(case=truth.case, i=truth.i)
        err = pointwise_errors(x, truth, self.state_dims)
        se_a = err["se"].values
        se_b = ((c.background - truth) ** 2).mean("i").values
        clim, _ = climatology(self, size, root)
        ref2 = ((truth - clim) ** 2).mean("i").values
        dens = c.density.values
        n = len(se_a)

        def rmse(i=slice(None)):
            return np.sqrt(np.mean(se_a[i]))

        def mu(i=slice(None)):
            return 1.0 - np.sqrt(np.mean(se_a[i]) / np.mean(ref2[i]))

        def gain(i=slice(None)):
            return 1.0 - np.sqrt(np.mean(se_a[i]) / np.mean(se_b[i]))

        out = {"rmse": Score(rmse(), *metrics.bootstrap_ci(rmse, n_cases=n)),
               "mu": Score(mu(), *metrics.bootstrap_ci(mu, n_cases=n)),
               "gain": Score(gain(), *metrics.bootstrap_ci(gain, n_cases=n))}
        for f in self.densities:
            sel = se_a[dens == f]
            out[f"rmse_obs{_pct(f)}"] = Score(np.sqrt(sel.mean()), *metrics.bootstrap_ci(
                lambda i, sel=sel: np.sqrt(np.mean(sel[i])), n_cases=len(sel)))
        crps = err["crps"].values
        out["crps"] = Score(crps.mean(), *metrics.bootstrap_ci(crps))
        out["spread_skill"] = (spread_skill_score(se_a, err["var"].values, err["members"]) if "var" in err
                               else Score(float("nan"), extra={"flag": "deterministic"}))
        mean = x.mean(MEMBER) if MEMBER in x.dims else x
        out["lambda_x"] = lambda_x(mean, truth)
        return out
