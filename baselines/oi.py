"""``oi``: optimal interpolation with a Gaussian covariance, solved in observation space.

Mapping (``qg-map`` family; the ocean data challenge 2020a baseline): the SSH
anomaly (observations minus the training climatological mean, which is constant
in space by homogeneity, 0 up to round-off) has the space-time covariance

    C(dr, dt) = var * exp(-dr^2 / Lx^2 - dt^2 / Lt^2)      (periodic distances dr)

and the observations the error variance ``R_i = sigma_i^2 / n_i + noise * var``
(instrument noise of a super-observation of n_i points plus a
representativeness/model part, ``noise`` as the ODC baseline's dimensionless
noise). ``var`` is the training anomaly variance. Before the analysis the
observations are averaged into super-observations per (time, LR cell)
(``challenges.gridding.superobs``), which loses nothing the LR map can hold and
makes the systems small. Each daily map uses the super-observations within
+-``2 Lt`` days; consecutive map days share one factorisation (blocks of ~2 Lt
days with the observations within 2 Lt of the block); when a block has more
than ``max_obs`` observations and it is cheaper, the grid is cut into square
patches, each analysed from the observations within ``2.5 Lx`` of it (local
patches); no system exceeds ``cap`` observations (the nearest in normalised
space-time distance are kept). Every system ``(C_oo + R) a = d`` is solved by a
Cholesky factorisation, batched over blocks and patches in torch (float64; on
the GPU when the method's device is one). The maps are finally passed through
the challenge's coarse-graining filter (the truth is the filtered HR field
while the observations sample the HR field, and the best estimate of a filtered
field is the filtered best estimate).

One-step DA (``qg-da`` family, ``qg-fc48``): the same Gaussian covariance in
space only, for the background error of the observed SSH: ``var = alpha *
var_b`` with ``var_b`` the variance of 48 h LR forecast errors on the training
split, ``R_i = sigma_i^2``; innovations ``y - H(x_b)`` with the observation
operator of ``baselines.qg_case`` (exact evaluation of the LR SSH at the
positions; the Gaussian covariance fits the LR SSH better than the SSH with the
coarse-graining filter undone that 3dvar and letkf use). The analysed SSH
increment (on the LR grid) is turned into a PV increment of both layers by the
B-regression of the training forecast errors (per isotropic wavenumber,
``dq_l = r_l(k) d_eta``, the minimum-B-norm PV increment with exactly that SSH;
see ``baselines.qg_covariance``).

Tuning (never on test): Lx, Lt, noise (mapping) or Lx, alpha (DA) by a small
coordinate search on the validation split, maximising µ(RMSE) of SSH.

Lorenz-96 (``l96-cycle``, ``l96-da``): the climatological OI of Sakov & Oke
(2008) and DAPPER's ``OptInterp``: the background is the training mean state
and B the training climatological covariance (no forecast, no tuning), so
``xa = mean + B H^T (H B H^T + R)^-1 (y - H mean)``, solved in observation
space by a batched Cholesky factorisation (rows of unobserved variables are
replaced by identity rows with zero innovation, so one n x n system serves
every observation mask). Literature analysis RMSE in ``l96-cycle``: 0.95.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import xarray as xr

from challenges import gridding
from challenges import qg_common as Q
from challenges.l96_cycle import L96_CYCLING
from challenges.qg_da import DA_CHALLENGES
from challenges.qg_map import MAP_CHALLENGES

from .base import Method
from .case_tensors import read_case
from .qg_case import read_qg_case

FC_CHALLENGES = ("qg-fc48",)
L96_CHALLENGES = (*L96_CYCLING, "l96-da")


def climatological_oi(mean: torch.Tensor, B: torch.Tensor, y: torch.Tensor, rinv: torch.Tensor) -> torch.Tensor:
    """Batched OI analyses (Bt, n) from the climatological ``mean`` (n,) and covariance ``B`` (n, n), obs ``y``
    (Bt, n) zero-filled and ``rinv`` (Bt, n) = mask / sigma^2, solved in observation space by Cholesky."""
    mask = rinv > 0
    m = mask.to(B.dtype)
    r = torch.where(mask, 1.0 / rinv.clamp_min(1e-300), 1.0)
    S = m[:, :, None] * B * m[:, None, :] + torch.diag_embed(r)
    d = m * (y - mean)
    a = torch.cholesky_solve(d[..., None], torch.linalg.cholesky(S))[..., 0]
    return mean + (m * a) @ B.T


def _periodic(d: torch.Tensor, L: float) -> torch.Tensor:
    return torch.remainder(d + 0.5 * L, L) - 0.5 * L


def solve_gaussian_oi(ox, oy, ot, d, R, mask, gx, gy, gt, Lx: float, Lt: float | None, var: float, L: float,
                      max_bytes: float = 2.0e8) -> torch.Tensor:
    """Batched OI estimates on (time x grid) blocks from observations, Gaussian covariance, periodic domain.

    ox, oy, ot, d, R, mask: (B, P) observation positions (km), times (days), values
    (anomalies / innovations), error variances and validity (padding = False).
    Estimates at every (gt[b, k], gy[b, j], gx[b, i]): gx (B, nxg) and gy (B, nyg) the
    columns and rows of a (sub-)grid, gt (B, K) the times (``Lt=None``: no time
    dependence, gt ignored, K = 1). Returns (B, K, nyg, nxg).

    Solved by a Cholesky factorisation of (C_oo + R) per batch member (chunks of B
    under ``max_bytes``); the separable covariance C = var e_t e_y e_x makes the
    estimation one matrix product per block: est[k, j, i] = sum_p e_t[k, p] e_y[j, p]
    alpha[p] e_x[i, p].
    """
    B, P = ox.shape
    chunk = max(1, int(max_bytes // (8.0 * 4 * P * P + 1.0)))
    out = []

    def gauss(a, b, scale):  # (c, n), (c, P) -> exp(-periodic(a - b)^2 / scale^2), (c, n, P)
        dd = _periodic(a[:, :, None] - b[:, None, :], L)
        return torch.exp_(dd.mul_(dd).div_(-scale * scale))

    for s in range(0, B, chunk):
        sl = slice(s, s + chunk)
        m = mask[sl].to(torch.float64)
        C = gauss(ox[sl], ox[sl], Lx)
        C.mul_(gauss(oy[sl], oy[sl], Lx))
        if Lt is not None:
            dt = ot[sl, :, None] - ot[sl, None, :]
            C.mul_(torch.exp_(dt.mul_(dt).div_(-Lt * Lt)))
            del dt
        C.mul_(var * (m[:, :, None] * m[:, None, :]))
        C.diagonal(dim1=-2, dim2=-1).add_(R[sl] * m + (1.0 - m))
        Lc, info = torch.linalg.cholesky_ex(C)
        if bool((info > 0).any()):  # tiny jitter if round-off broke positive definiteness
            C.diagonal(dim1=-2, dim2=-1).add_(1e-10 * var)
            Lc = torch.linalg.cholesky(C)
        del C
        alpha = torch.cholesky_solve((d[sl] * m)[..., None], Lc)[..., 0] * m * var   # (c, P)
        del Lc
        ex = gauss(gx[sl], ox[sl], Lx)                                                 # (c, nxg, P)
        ey = gauss(gy[sl], oy[sl], Lx) * alpha[:, None, :]                             # (c, nyg, P)
        if Lt is None:
            w = ey[:, None]                                                            # (c, 1, nyg, P)
        else:
            dt = gt[sl, :, None] - ot[sl, None, :]
            et = torch.exp_(dt.mul_(dt).div_(-Lt * Lt))                                # (c, K, P)
            w = et[:, :, None, :] * ey[:, None, :, :]                                  # (c, K, nyg, P)
        c, K, nyg = w.shape[:3]
        est = torch.bmm(w.reshape(c, K * nyg, P), ex.transpose(1, 2))                  # (c, K*nyg, nxg)
        out.append(est.reshape(c, K, nyg, -1))
    return torch.cat(out)


def _pad(groups: list[np.ndarray], arrays: dict[str, np.ndarray], device) -> tuple[dict, torch.Tensor]:
    """Gather rows ``groups[b]`` of each array into padded (B, Pmax) tensors and a mask."""
    P = max(1, max(len(g) for g in groups))
    B = len(groups)
    idx = np.zeros((B, P), dtype=np.int64)
    mask = np.zeros((B, P), dtype=bool)
    for b, g in enumerate(groups):
        idx[b, :len(g)] = g
        mask[b, :len(g)] = True
    out = {k: torch.as_tensor(v[idx], dtype=torch.float64, device=device) for k, v in arrays.items()}
    return out, torch.as_tensor(mask, device=device)


def time_blocks(times: np.ndarray, block: int) -> list[np.ndarray]:
    """Indices of ``times`` grouped into runs of consecutive days, each cut into blocks of <= ``block``."""
    if len(times) == 0:
        return []
    breaks = np.flatnonzero(np.diff(times) > 1.0 + 1e-9) + 1
    out = []
    for run in np.split(np.arange(len(times)), breaks):
        nb = max(1, math.ceil(len(run) / block))
        out.extend(np.array_split(run, nb))
    return out


def _patches(n_obs: int, nx: int, L: float, halo: float, max_obs: int) -> int:
    """Patches per side (a divisor of nx; 1 = global) minimising the estimated Cholesky cost
    n_p^2 (f P)^3, f = ((L/n_p + 2 halo)/L)^2 the share of the observations a patch sees;
    global whenever P <= max_obs."""
    if n_obs <= max_obs:
        return 1
    best, best_cost = 1, float(n_obs) ** 3
    for n_p in range(2, nx + 1):
        if nx % n_p:
            continue
        f = min(1.0, ((L / n_p + 2 * halo) / L) ** 2)
        cost = n_p ** 2 * (f * n_obs) ** 3
        if cost < 0.8 * best_cost:
            best, best_cost = n_p, cost
    return best


def _select(sel: np.ndarray, sobs: dict, t0: float, t1: float, box, Lx: float, Lt: float, L: float,
            cap: int) -> np.ndarray:
    """At most ``cap`` of the observations ``sel``: those nearest in normalised space-time distance
    ((dt/Lt)^2 + (dr/Lx)^2) to the time interval [t0, t1] and the square ``box`` = (cx, cy, half width)."""
    if len(sel) <= cap:
        return sel
    t = sobs["time"][sel]
    dt = np.maximum(np.maximum(t0 - t, t - t1), 0.0)
    cx, cy, hw = box
    ddx = np.maximum(np.abs((sobs["x"][sel] - cx + 0.5 * L) % L - 0.5 * L) - hw, 0.0)
    ddy = np.maximum(np.abs((sobs["y"][sel] - cy + 0.5 * L) % L - 0.5 * L) - hw, 0.0)
    score = (dt / Lt) ** 2 + (ddx ** 2 + ddy ** 2) / Lx ** 2
    keep = np.argpartition(score, cap - 1)[:cap]
    return np.sort(sel[keep])


def map_oi(sobs: dict, times: np.ndarray, xg: np.ndarray, L: float, Lx: float, Lt: float, var: float,
           noise: float, max_obs: int = 2000, cap: int = 4000, device="cpu") -> np.ndarray:
    """Daily OI maps (len(times), ny, nx) of anomalies from super-observations ``sobs``.

    ``sobs``: dict(time, x, y, value, sigma) sorted by time. Map days are grouped in
    blocks of about ``2 Lt`` consecutive days that share one factorisation: the
    observations within ``2 Lt`` of the block (a superset of each day's +-2 Lt window,
    so each map is still an exact OI, from slightly more data). When a block has more
    than ``max_obs`` observations, the grid is cut into square patches, each analysed
    from the observations within ``2.5 Lx`` of it (local patches), whenever that is
    cheaper. A system never exceeds ``cap`` observations (a safety net for memory and time):
    beyond, the ``cap`` nearest in normalised distance ((dt/Lt)^2 + (dr/Lx)^2) are kept.
    """
    nx = len(xg)
    window = 2.0 * Lt
    R = sobs["sigma"] ** 2 + noise * var
    arrays = {"x": sobs["x"], "y": sobs["y"], "t": sobs["time"], "d": sobs["value"], "R": R}
    t = sobs["time"]
    out = np.zeros((len(times), nx * nx))
    block = max(1, int(round(window)))
    problems = []  # (map time indices, grid indices, obs indices)
    for tb in time_blocks(np.asarray(times, dtype=np.float64), block):
        t0, t1 = times[tb[0]], times[tb[-1]]
        lo = np.searchsorted(t, t0 - window, "left")
        hi = np.searchsorted(t, t1 + window, "right")
        sel = np.arange(lo, hi)
        halo = 2.5 * Lx
        n_p = _patches(len(sel), nx, L, halo, max_obs)
        if n_p == 1:
            problems.append((tb, (np.arange(nx), np.arange(nx)),
                             _select(sel, sobs, t0, t1, (0.0, 0.0, L), Lx, Lt, L, cap)))
            continue
        cells = nx // n_p
        ox, oy = sobs["x"][sel], sobs["y"][sel]
        hw = 0.5 * cells * L / nx
        for pj in range(n_p):
            for pi in range(n_p):
                cx, cy = (pi + 0.5) * cells * L / nx, (pj + 0.5) * cells * L / nx
                ddx = np.maximum(np.abs((ox - cx + 0.5 * L) % L - 0.5 * L) - hw, 0.0)
                ddy = np.maximum(np.abs((oy - cy + 0.5 * L) % L - 0.5 * L) - hw, 0.0)
                near = _select(sel[ddx * ddx + ddy * ddy <= halo * halo], sobs, t0, t1, (cx, cy, hw), Lx, Lt, L, cap)
                rows, cols = np.arange(pj * cells, (pj + 1) * cells), np.arange(pi * cells, (pi + 1) * cells)
                problems.append((tb, (rows, cols), near))
    # batch problems of equal (block length, patch size), sorted by obs count to limit padding
    out = out.reshape(len(times), nx, nx)
    groups = {}
    for p in problems:
        groups.setdefault((len(p[0]), len(p[1][0])), []).append(p)
    for (K, G), group in groups.items():
        group.sort(key=lambda p: len(p[2]))
        for s in range(0, len(group), 64):
            part = group[s:s + 64]
            obs_t, mask = _pad([p[2] for p in part], arrays, device)
            gy = torch.as_tensor(np.stack([xg[p[1][0]] for p in part]), device=device)
            gx = torch.as_tensor(np.stack([xg[p[1][1]] for p in part]), device=device)
            gt = torch.as_tensor(np.stack([times[p[0]] for p in part]), dtype=torch.float64, device=device)
            est = solve_gaussian_oi(obs_t["x"], obs_t["y"], obs_t["t"], obs_t["d"], obs_t["R"], mask,
                                    gx, gy, gt, Lx, Lt, var, L).cpu().numpy()
            for b, p in enumerate(part):
                out[np.ix_(p[0], p[1][0], p[1][1])] = est[b]
    return out.reshape(len(times), nx, nx)


def coarse_filter(f: np.ndarray) -> np.ndarray:
    """The challenge's coarse-graining filter (Gaussian, LR Nyquist removed) applied to LR grid fields.

    The truth is the coarse-grained HR field while the observations sample the HR field:
    the best estimate of the filtered field is the filtered best estimate of the field.
    """
    from data_scripts.coarsen import filter_gain

    n = f.shape[-1]
    g = filter_gain(n).numpy().copy()
    g[n // 2, :] = 0.0
    g[:, -1] = 0.0
    return np.fft.irfft2(np.fft.rfft2(f) * g, s=f.shape[-2:])


class OI(Method):
    name = "oi"
    summary = "optimal interpolation, Gaussian space(-time) covariance (ODC 2020a baseline), Cholesky in obs space"
    applies_to = MAP_CHALLENGES + DA_CHALLENGES + FC_CHALLENGES + L96_CHALLENGES
    reference = "Le Traon et al. (1998); ocean data challenge 2020a baseline OI; L96: Sakov & Oke (2008)"

    #: starting point and candidates of the coordinate search (km, days, dimensionless)
    map_start = dict(Lx=45.0, Lt=15.0, noise=0.1)
    map_grid = dict(Lx=(25.0, 35.0, 45.0, 60.0, 80.0, 110.0), Lt=(3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0),
                    noise=(0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0))
    da_start = dict(Lx=80.0, alpha=1.0)
    da_grid = dict(Lx=(12.0, 18.0, 25.0, 35.0, 50.0, 70.0, 100.0, 150.0), alpha=(0.1, 0.25, 0.5, 1.0, 2.0, 4.0))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.params = {}
        self.tuning = []
        self.stats = {}
        self.max_obs = 2000
        self.cap = 4000
        #: tuning maps: one 10-day run of days in every ``tune_every`` (tiny: 1 in 3; else 1 in 9)
        self.tune_every = 3 if self.size == "tiny" else 9
        self.filtered = True
        #: DA: model the observations as the LR SSH (False) or as the LR SSH with the coarse-graining
        #: filter undone (True); the Gaussian covariance fits the former better (checked on val at tiny)
        self.defilter = False

    @property
    def mode(self) -> str:
        if self.challenge.name in L96_CHALLENGES:
            return "l96"
        return "map" if self.challenge.name in MAP_CHALLENGES else "da"

    # -- fit -------------------------------------------------------------------------------
    def fit(self, train, val) -> None:
        t0 = time.perf_counter()
        if self.mode == "l96":
            from .climatology import truth_of
            from .covariance import StateCovariance

            x = truth_of(train)
            C = StateCovariance.from_samples(x.values.reshape(-1, x.sizes["i"]))
            self.clim_mean, self.clim_B = C.mean.to(self.device), C.matrix.to(self.device)
            self.stats["B"] = f"climatological covariance of {C.n_samples} training states"
            return
        if self.mode == "map":
            self._fit_map(train)
            score = self._tune(self.map_start, self.map_grid, self._val_score_map())
        else:
            self._fit_da(train)
            score = self._tune(self.da_start, self.da_grid, self._val_score_da())
        self.stats["val_mu"] = score
        self.stats["fit_seconds"] = time.perf_counter() - t0

    def _tune(self, start: dict, grid: dict, evaluate, sweeps: int = 2) -> float:
        """Coordinate search over ``grid`` from ``start``, maximising ``evaluate(params)``."""
        best = dict(start)
        seen = {}

        def ev(p):
            key = tuple(sorted(p.items()))
            if key not in seen:
                t0 = time.perf_counter()
                seen[key] = evaluate(p)
                self.tuning.append({**p, "val_mu": seen[key], "seconds": round(time.perf_counter() - t0, 2)})
            return seen[key]

        best_score = ev(best)
        for _ in range(sweeps):
            changed = False
            for name, cands in grid.items():
                for c in cands:
                    trial = dict(best, **{name: c})
                    s = ev(trial)
                    if s > best_score + 1e-6:
                        best, best_score, changed = trial, s, True
            if not changed:
                break
        self.params = best
        return best_score

    # -- mapping -----------------------------------------------------------------------------
    def _fit_map(self, train) -> None:
        size = self.size
        ssh = train["ssh"].values.astype(np.float64)
        # the world is statistically homogeneous: the climatological mean is constant in space
        # (the training mean over time, trajectories and space; 0 up to round-off for SSH)
        self.mean_field = np.full(ssh.shape[-2:], ssh.mean())
        self.stats["mean"] = float(ssh.mean())
        self.stats["var"] = float(((ssh - self.mean_field) ** 2).mean())
        self.L = Q.domain_km(size)
        self.xg = Q.grid_km(size)

    def _superobs(self, case: xr.Dataset) -> dict:
        nx = len(self.xg)
        interp = Q.Interpolator(case["obs_x"].values, case["obs_y"].values, nx, self.L)
        mean_at = interp.forward(torch.as_tensor(self.mean_field)[None])[0].numpy()
        return gridding.superobs(case["obs_time"].values, case["obs_x"].values, case["obs_y"].values,
                                 case["obs_value"].values - mean_at, case["obs_sigma"].values, nx, L=self.L)

    def _map(self, sobs: dict, times: np.ndarray, p: dict) -> np.ndarray:
        est = map_oi(sobs, times, self.xg, self.L, p["Lx"], p["Lt"], self.stats["var"], p["noise"],
                     max_obs=self.max_obs, cap=self.cap, device=self.device)
        if self.filtered:
            est = coarse_filter(est)
        return est + self.mean_field

    def _val_score_map(self):
        ch = self.challenge
        cases = list(ch.cases(self.size, split="val"))
        truth = ch.truth(self.size, split="val")["ssh"]
        sobs = [self._superobs(c) for c in cases]

        def evaluate(p):
            num = den = 0.0
            for c, so in zip(cases, sobs):
                times = c["time"].values
                times = times[(times // 10) % self.tune_every == 0]  # one 10-day run in tune_every
                est = self._map(so, times, p)
                tr = truth.sel(traj=int(c["traj"]), time=times).values
                num += float(((est - tr) ** 2).sum())
                den += float((tr ** 2).sum())
            return 1.0 - math.sqrt(num / den)

        return evaluate

    # -- one-step DA ---------------------------------------------------------------------------
    def _fit_da(self, train) -> None:
        from .qg_covariance import SpectralCovariance, forecast_errors

        size = self.size
        self.L = Q.domain_km(size)
        self.xg = Q.grid_km(size)
        self.model = Q.lr_model(size)
        errs = forecast_errors(train, size, self.challenge.lead_hours if hasattr(self.challenge, "lead_hours") else 48)
        self.B = SpectralCovariance.from_samples(errs, device=self.device)
        t = Q.obs_transfer(self.model, self.defilter).to(self.device)
        self.regression = self.B.ssh_regression(t)
        self.stats["var_b_ssh"] = self.B.ssh_variance(t)
        self.stats["n_error_samples"] = len(errs)

    def _val_score_da(self):
        ch = self.challenge
        cases = []
        for c in _da_cases(ch, self.size, "val"):  # at most 24 analysis times per val trajectory
            cases.append(c.isel(time=slice(None, None, max(1, -(-c.sizes["time"] // 24)))))
        truth = ch.analysis_truth(self.size, split="val")["q"]

        def evaluate(p):
            preds = [self._analyse(c, p)["q"].transpose("time", "lev", "y", "x").values for c in cases]
            tr = np.stack([truth.sel(traj=int(c["traj"]), time=c["time"]).values for c in cases])
            return ch.quick_score(np.stack(preds), tr, self.size)

        return evaluate

    def _analyse(self, case: xr.Dataset, p: dict) -> xr.Dataset:
        """Analysis ``q`` of one DA case (any batch dims, deterministic background)."""
        g = read_qg_case(case, self.device)
        nx = g.nx
        d = g.y - g.ssh_obs(g.xb, self.defilter)
        mask = torch.ones_like(d, dtype=torch.bool)
        xg = torch.as_tensor(self.xg, device=self.device).expand(g.B, -1)
        var = p["alpha"] * self.stats["var_b_ssh"]
        deta = solve_gaussian_oi(g.ox, g.oy, torch.zeros_like(g.ox), d, g.sigma ** 2, mask, xg, xg, None, p["Lx"],
                                 None, var, self.L)[:, 0]
        dq = torch.fft.irfft2(self.regression * torch.fft.rfft2(deta)[:, None], s=(nx, nx))
        return g.dataset(g.xb + dq)

    # -- predict ----------------------------------------------------------------------------------
    def predict(self, case: xr.Dataset) -> xr.Dataset:
        if self.mode == "l96":
            g = read_case(case, self.challenge.state_dims, self.device)
            return g.dataset(climatological_oi(self.clim_mean, self.clim_B, g.y, g.rinv))
        if self.mode == "map":
            est = self._map(self._superobs(case), case["time"].values, self.params)
            return xr.Dataset({"ssh": (("time", "y", "x"), est)},
                              coords={"time": case["time"], "y": case["y"], "x": case["x"]})
        return self._analyse(case, self.params)

    def describe(self) -> dict:
        if self.mode == "l96":
            return {"background": "training mean state", "B": self.stats["B"], "solver": "Cholesky in obs space"}
        return {"params": self.params, "stats": self.stats, "tuning": self.tuning,
                "solver": f"Cholesky per (block of days, patch); global up to {self.max_obs} obs, at most "
                          f"{self.cap} obs per system (nearest in normalised distance)",
                "coarse_filter_applied": self.filtered}


def _da_cases(challenge, size: str, split: str):
    """DA cases of a split: ``qg-fc48`` shares the ``qg-da`` cases."""
    return challenge.cases(size, split=split)
