"""What the Lorenz-96 challenges share: geometry, data access, climatology, observation masks, problems.

The state is x (40 variables on a ring, dim ``i``); observations are of state
variables at their grid points (``observes = "state"``): a case holds
``y(..., i)`` (NaN where not observed), ``obs_mask(..., i)`` and ``sigma``, so H is
a selection and R = sigma² I (there is no representativeness error: the
observations sample the state itself).
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import lazy_loader as lazy
import numpy as np

from .geometry import RING, Geometry

torch = lazy.load("torch")
xr = lazy.load("xarray")

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
N = 40
GEOMETRY = Geometry(kind=RING, shape=(N,), length=(float(N),), axes=("i",), units="grid points")


@functools.lru_cache(maxsize=1)
def model():
    """The Lorenz-96 model of the challenges (N = 40, F = 8, dt = 0.05 = 6 h; perfect)."""
    from data_scripts.l96 import Lorenz96

    return Lorenz96()


@functools.lru_cache(maxsize=12)
def _read(path: str) -> dict:
    fields = xr.open_zarr(Path(path) / "fields.zarr", consolidated=False)
    obs = xr.open_zarr(Path(path) / "obs.zarr", consolidated=False)
    return {"x": fields.x.values, "y": obs.y_obs.values, "sigma": float(obs.sigma.values),
            "times": fields.time.values, "time_attrs": dict(fields.time.attrs), "i": fields.i.values}


def load_split(challenge, size: str, split: str, root=None) -> dict:
    """Truth ``x`` (traj, time, i), dense observations ``y``, ``sigma``, ``times`` of a split (cached, numpy)."""
    return _read(str(challenge.data_dir(size, root) / split))


def climatology(challenge, size: str, root=None) -> tuple[np.ndarray, float]:
    """Training-split mean state (i,) and RMS deviation of training states from it."""
    x = load_split(challenge, size, "train", root)["x"]
    mean = x.mean(axis=(0, 1))
    return mean, float(np.sqrt(((x - mean) ** 2).mean()))


def observed_mask(fraction: float, moving: bool, n_rows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (n_rows, n) masks of round(fraction n) observed variables: evenly spaced indices
    (``data_scripts.obs.l96_indices``) in every row, or (``moving``) a new random subset per row."""
    from data_scripts.obs import l96_indices

    k = max(1, round(fraction * n))
    mask = np.zeros((n_rows, n), dtype=bool)
    if moving and k < n:
        np.put_along_axis(mask, np.argsort(rng.random((n_rows, n)), axis=1)[:, :k], True, axis=1)
    else:
        mask[:, l96_indices(n, n=k)] = True
    return mask


def operator():
    from .problems import FieldMap, ObservationOperator

    return ObservationOperator(FieldMap(GEOMETRY, None, "x"))


def observations(y, mask, sigma, device="cpu"):
    """``Observations`` of a batch of cases: y (B, N) with NaN where unobserved, mask (B, N), sigma (scalar or (B, N))."""
    from .problems import Observations

    m = torch.as_tensor(np.array(mask, dtype=bool), device=device)
    yt = torch.as_tensor(np.array(y, dtype=np.float64), device=device)
    s = torch.as_tensor(np.broadcast_to(np.asarray(sigma, dtype=np.float64), m.shape).copy(), device=device)
    pos = torch.arange(N, dtype=torch.float64, device=device).expand(*m.shape).unsqueeze(-1)
    return Observations(values=torch.where(m, yt.nan_to_num(0.0), torch.zeros_like(yt)), sigma=s, positions=pos,
                        valid=m, sigma_repr=0.0)


def problem(background, y, mask, sigma, batch_dims: tuple, batch_shape: tuple, coords: dict, cycle=None, device="cpu",
            attrs=None):
    """The ``AnalysisProblem`` of a batch of L96 cases: background (B, [M], N) with B = prod(batch_shape)."""
    from .problems import AnalysisProblem

    bg = torch.as_tensor(np.asarray(background, dtype=np.float64) if not torch.is_tensor(background) else background,
                         dtype=torch.float64, device=device)
    B = math.prod(batch_shape) if batch_shape else 1
    return AnalysisProblem(background=bg,
                           obs=observations(np.reshape(y, (B, N)), np.reshape(mask, (B, N)),
                                            np.broadcast_to(np.asarray(sigma), np.shape(y)).reshape(B, N), device),
                           H=operator(), geometry=GEOMETRY, var="x", batch_dims=batch_dims, batch_shape=batch_shape,
                           coords=coords, cycle=cycle, attrs=dict(attrs or {}))


def problem_from_dataset(ds, device="cpu", cycle=None, attrs=None):
    """The problem of an L96 case Dataset (``background`` (*batch, [member], i), ``y``, ``obs_mask``, ``sigma``)."""
    bg = ds["background"]
    batch_dims = tuple(d for d in bg.dims if d not in ("i", "member"))
    bg = bg.transpose(*batch_dims, *(("member",) if "member" in bg.dims else ()), "i")
    batch_shape = tuple(bg.sizes[d] for d in batch_dims)
    sizes = dict(bg.sizes)

    def arr(name):
        da = ds[name]
        v = np.asarray(da.transpose(*[d for d in (*batch_dims, "i") if d in da.dims]).values)
        shape = [sizes[d] if d in da.dims else 1 for d in (*batch_dims, "i")]
        return np.broadcast_to(v.reshape(shape), [sizes[d] for d in (*batch_dims, "i")])

    coords = {d: bg[d] for d in (*batch_dims, "i") if d in bg.coords}
    flat = np.asarray(bg.values, dtype=np.float64).reshape(math.prod(batch_shape), *bg.shape[len(batch_dims):])
    return problem(flat, arr("y"), arr("obs_mask"), arr("sigma"), batch_dims, batch_shape, coords,
                   cycle=cycle, device=device, attrs=attrs)


def rmse_per_case(x: torch.Tensor, truth) -> np.ndarray:
    """State RMSE per experiment: x (E, N), truth (E, N)."""
    t = torch.as_tensor(np.asarray(truth, dtype=np.float64)) if not torch.is_tensor(truth) else truth
    return ((x - t.to(x)) ** 2).reshape(x.shape[0], -1).mean(1).sqrt().cpu().numpy()
