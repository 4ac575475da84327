"""What the learned methods see of a problem: normalised tensors on the problem's grid or graph.

World-agnostic: everything comes from the problem's geometry, background,
observations and observation operator.

* ``Normaliser``: per-level mean and std of the state, std of the analysis
  increment (truth - background), and mean/std of the observed values and of
  the innovations y - H(xb), all from the TRAIN split (stored in the checkpoint).
* ``cell_index``: the grid cell holding each observation (cells centred on the
  geometry's coordinates).
* ``grid_channels``: the background per level, and per cell the mean observed
  value, the mean innovation, the observation mask and the count: the input of
  a U-Net.
* ``obs_features`` / ``grid_features``: node features of a graph network
  (value, innovation and total error std per observation; the background per
  level per grid node), with positions in cell units.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch


@dataclass
class Normaliser:
    state_mean: list
    state_std: list
    inc_std: list
    obs_mean: float
    obs_std: float
    innov_std: float
    sigma_scale: float
    #: settings that must travel with the weights (e.g. a graph network's edge scale)
    extra: dict = field(default_factory=dict)

    def tensors(self, device, levels: int):
        t = lambda v: torch.as_tensor(np.asarray(v, np.float64), device=device).reshape(1, levels, *[1] * 0)
        return t(self.state_mean), t(self.state_std), t(self.inc_std)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Normaliser:
        return cls(**d)


def _per_level(a: np.ndarray, levels: int, fn) -> list:
    a = np.asarray(a, np.float64).reshape(a.shape[0], levels, -1)
    return [float(fn(a[:, lev])) for lev in range(levels)]


def fit_normaliser(background: np.ndarray, truth: np.ndarray, obs_values: np.ndarray, innovations: np.ndarray,
                   sigma: np.ndarray, levels: int) -> Normaliser:
    """Statistics of training pairs: states (n, *state_shape); obs arrays flattened over valid rows."""
    inc = truth - background
    return Normaliser(state_mean=_per_level(truth, levels, np.mean), state_std=_per_level(truth, levels, np.std),
                      inc_std=[max(v, 1e-30) for v in _per_level(inc, levels, np.std)],
                      obs_mean=float(np.mean(obs_values)), obs_std=float(np.std(obs_values)) or 1.0,
                      innov_std=float(np.std(innovations)) or 1.0, sigma_scale=float(np.mean(sigma)) or 1.0)


def level_view(x: torch.Tensor, geometry) -> torch.Tensor:
    """(B, *state_shape) -> (B, levels, *grid_shape) (adds the level dim of single-level states)."""
    return x.reshape(x.shape[0], geometry.n_levels, *geometry.shape)


def cell_index(geometry, positions: torch.Tensor) -> torch.Tensor:
    """Flat cell index (C order of the grid) of positions (B, P, ndim) in the geometry's units."""
    idx = torch.zeros(positions.shape[:-1], dtype=torch.long, device=positions.device)
    for a in range(geometry.ndim):
        n, dx = geometry.shape[a], geometry.spacing[a]
        origin = float(geometry.axis_coords(a)[0]) - 0.5 * dx
        i = torch.floor((positions[..., a] - origin) / dx).long().remainder(n)
        idx = idx * n + i
    return idx


def cell_coordinates(geometry, positions: torch.Tensor) -> torch.Tensor:
    """Positions in cell units with cell j spanning [j, j + 1) on every axis (the graph helpers' convention)."""
    out = []
    for a in range(geometry.ndim):
        dx = geometry.spacing[a]
        origin = float(geometry.axis_coords(a)[0]) - 0.5 * dx
        out.append(((positions[..., a] - origin) / dx).remainder(geometry.shape[a]))
    return torch.stack(out, -1)


def innovations(problem, background: torch.Tensor) -> torch.Tensor:
    """y - H(xb) (B, P), 0 where invalid."""
    d = problem.obs.values - problem.H(background)
    return torch.where(problem.obs.valid, d, torch.zeros_like(d))


def _scatter_mean(values: torch.Tensor, cells: torch.Tensor, valid: torch.Tensor, n_cells: int):
    B = values.shape[0]
    w = valid.to(values.dtype)
    total = torch.zeros(B, n_cells, dtype=values.dtype, device=values.device).scatter_add_(1, cells, values * w)
    count = torch.zeros(B, n_cells, dtype=values.dtype, device=values.device).scatter_add_(1, cells, w)
    return torch.where(count > 0, total / count.clamp_min(1.0), torch.zeros_like(total)), count


def grid_channels(problem, norm: Normaliser) -> torch.Tensor:
    """(B, levels + 4, *grid): background per level, mean obs value, mean innovation, mask, log(1 + count)."""
    g = problem.geometry
    xb = problem.background.mean(1) if problem.ensemble else problem.background
    m, s, _ = norm.tensors(xb.device, g.n_levels)
    bg = (level_view(xb, g) - m.reshape(1, -1, *[1] * g.ndim)) / s.reshape(1, -1, *[1] * g.ndim)
    o = problem.obs
    cells = cell_index(g, o.positions)
    val, count = _scatter_mean((o.values - norm.obs_mean) / norm.obs_std, cells, o.valid, g.n_points)
    inn, _ = _scatter_mean(innovations(problem, xb) / norm.innov_std, cells, o.valid, g.n_points)
    extra = torch.stack([val, inn, (count > 0).to(val.dtype), torch.log1p(count)], 1)
    return torch.cat([bg, extra.reshape(xb.shape[0], 4, *g.shape)], 1)


def obs_features(problem, norm: Normaliser, error_var: torch.Tensor) -> list:
    """Per sample: (positions in cell units (P_b, ndim), features (P_b, 3): value, innovation, error std)."""
    g = problem.geometry
    xb = problem.background.mean(1) if problem.ensemble else problem.background
    o = problem.obs
    d = innovations(problem, xb)
    pos = cell_coordinates(g, o.positions)
    feats = torch.stack([(o.values - norm.obs_mean) / norm.obs_std, d / norm.innov_std,
                         error_var.sqrt() / norm.sigma_scale], -1)
    return [(pos[b][o.valid[b]], feats[b][o.valid[b]]) for b in range(o.B)]


def grid_features(problem, norm: Normaliser) -> torch.Tensor:
    """(B, n_points, levels): the normalised background per level at every grid node (C order)."""
    g = problem.geometry
    xb = problem.background.mean(1) if problem.ensemble else problem.background
    m, s, _ = norm.tensors(xb.device, g.n_levels)
    bg = (level_view(xb, g) - m.reshape(1, -1, *[1] * g.ndim)) / s.reshape(1, -1, *[1] * g.ndim)
    return bg.reshape(xb.shape[0], g.n_levels, -1).transpose(1, 2)


def increment_scale(norm: Normaliser, geometry, device) -> torch.Tensor:
    """(1, levels, *[1]*ndim) std of the analysis increment per level (the network's output unit)."""
    _, _, inc = norm.tensors(device, geometry.n_levels)
    return inc.reshape(1, -1, *[1] * geometry.ndim)


def n_params(module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def prod(shape) -> int:
    return math.prod(shape)


def window_channels(problem, norm: Normaliser) -> torch.Tensor:
    """(B, 2 n_bins [+ 1], *grid) of a ``WindowProblem``: per daily time bin in [-w, w], the mean normalised
    observed value and log(1 + count) per cell; then the normalised first guess, if the problem has one."""
    g = problem.geometry
    o = problem.obs
    hw = int(round(problem.half_window))
    nb = 2 * hw + 1
    k = (torch.round(o.times).long() + hw).clamp(0, nb - 1)
    cells = k * g.n_points + cell_index(g, o.positions)
    val, count = _scatter_mean((o.values - norm.obs_mean) / norm.obs_std, cells, o.valid, nb * g.n_points)
    val, count = val.reshape(o.B, nb, *g.shape), count.reshape(o.B, nb, *g.shape)
    channels = [val, torch.log1p(count)]
    if problem.first_guess is not None:
        channels.append(((problem.first_guess - norm.state_mean[0]) / norm.state_std[0]).unsqueeze(1))
    return torch.cat(channels, 1)


def window_obs_features(problem, norm: Normaliser, error_var: torch.Tensor) -> list:
    """Per sample of a ``WindowProblem``: (positions in cell units, features: value, error std, time offset / w)."""
    o = problem.obs
    pos = cell_coordinates(problem.geometry, o.positions)
    feats = torch.stack([(o.values - norm.obs_mean) / norm.obs_std, error_var.sqrt() / norm.sigma_scale,
                         o.times / max(problem.half_window, 1e-9)], -1)
    return [(pos[b][o.valid[b]], feats[b][o.valid[b]]) for b in range(o.B)]


def state_channels(x: torch.Tensor, geometry, norm: Normaliser) -> torch.Tensor:
    """(B, levels, *grid) normalised states x (B, *state_shape) (the input of a closure network)."""
    m, s, _ = norm.tensors(x.device, geometry.n_levels)
    shape = (1, -1, *[1] * geometry.ndim)
    return (level_view(x, geometry) - m.reshape(shape)) / s.reshape(shape)
