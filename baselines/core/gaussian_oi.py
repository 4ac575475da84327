"""Optimal interpolation with a Gaussian covariance on a periodic domain, solved in observation space.

The analysed anomaly (or increment) of a field has the covariance

    C(dr, dt) = var * exp(-dr^2 / Lx^2 - dt^2 / Lt^2)      (periodic distances dr; Lt=None: space only)

and the observations the error variances R_i. ``solve_gaussian_oi`` solves
``(C_oo + R) a = d`` by a Cholesky factorisation per batch member (batched in
torch, float64) and evaluates the estimate on (time x grid) blocks;
``map_oi`` organises a whole mapping period into blocks of days that share
one factorisation and, when a block has many observations, into square
patches analysed from the observations near them (local patches, with a cap
on the system size).
"""
from __future__ import annotations

import math

import lazy_loader as lazy
import numpy as np

torch = lazy.load("torch")


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


def day_blocks(times: np.ndarray, block: int) -> list[np.ndarray]:
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
    for tb in day_blocks(np.asarray(times, dtype=np.float64), block):
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
