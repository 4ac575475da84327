"""What the QG challenges share about the world: geometry, the LR model, the observed SSH, balance.

* geometry of the LR grid (cell centres in km, pyqg's grid; two layers ``lev``);
* the LR forecast model (``data_scripts.make_qg.models(cfg)[1]``: pyqg eddy
  parameters, no subgrid closure, dt = 1 h): the imperfect "operational" model;
* sea-surface height eta = (f0/g) psi1 of the LR state (``ssh_of_q``, what is
  scored), and the field the observations see (``obs_field_map``): the SSH of
  the HR field at the scales the LR grid resolves, i.e. the LR SSH with the
  coarse-graining filter undone; the observation operator H samples it exactly
  at the positions (``data_scripts.obs.TrigInterpolator``);
* the coarse-graining filter on LR maps (``coarse_filter``): the truth is the
  filtered HR field, so the best estimate of it is the filtered estimate of the
  field the observations sample;
* the streamfunction as a smooth analysis variable (``streamfunction``).

Units: x, y in km, time in days, SSH in m, q in 1/s.
"""
from __future__ import annotations

import functools

import lazy_loader as lazy
import numpy as np

from .geometry import PERIODIC2D, Geometry

torch = lazy.load("torch")

HOUR = 3600.0


def config(size: str) -> dict:
    from data_scripts.config import get_config

    return get_config("qg", size)


def ssh_per_psi() -> float:
    """eta = (f0/g) psi1 (s/m)."""
    from data_scripts.config import F0, GRAVITY

    return F0 / GRAVITY


@functools.lru_cache(maxsize=8)
def _lr_model_cached(size: str, device: str):
    from data_scripts.make_qg import models

    return models(config(size), device=device)[1]


def lr_model(size: str, device="cpu"):
    """The LR forecast model (float64) of ``size``."""
    return _lr_model_cached(size, str(device))


def lr_nx(size: str) -> int:
    return int(config(size)["nx_lr"])


def domain_km(size: str) -> float:
    from data_scripts.make_qg import regime

    return regime(config(size))["L"] / 1e3


@functools.lru_cache(maxsize=8)
def geometry(size: str) -> Geometry:
    n, L = lr_nx(size), domain_km(size)
    return Geometry(kind=PERIODIC2D, shape=(n, n), length=(L, L), axes=("y", "x"), units="km", level_dim="lev",
                    n_levels=2)


def grid_km(size: str) -> np.ndarray:
    """LR cell centres (km), the same for x and y."""
    return geometry(size).axis_coords(0)


def forecast(model, q, hours: float):
    """``q`` (..., 2, ny, nx) advanced by ``hours`` with the LR model (one fresh AB3 start)."""
    n = int(round(hours * HOUR / model.dt))
    if n == 0:
        return q.clone()
    with torch.no_grad():
        return model.step(q, n)


def ssh_of_q(model, q):
    """SSH (m), (..., ny, nx), of LR PV q (..., 2, ny, nx): (f0/g) psi1 from the LR inversion."""
    return ssh_per_psi() * model.invert(q)[..., 0, :, :]


def ssh_of_q_np(size: str, q: np.ndarray) -> np.ndarray:
    """``ssh_of_q`` for numpy input (any leading dims), float64."""
    t = torch.as_tensor(np.asarray(q, dtype=np.float64))
    return ssh_of_q(lr_model(size), t).numpy()


def filter_gain_lr(nx: int):
    """(ny, nx//2+1) transfer of the coarse-graining filter on the LR grid, 0 on the LR Nyquist row and column."""
    from data_scripts.coarsen import filter_gain

    g = filter_gain(nx).to(torch.float64).clone()
    g[nx // 2, :] = 0.0
    g[:, -1] = 0.0
    return g


def ssh_transfer(size: str, defilter: bool = True, device="cpu"):
    """(2, ny, nx//2+1) real multipliers t_l(k): rfft2(eta) = sum_l t_l(k) rfft2(q_l).

    ``defilter``: of the SSH the observations see at the resolved scales (the LR field divided
    by the filter's transfer; 0 on the LR Nyquist modes, which the coarse-graining removes),
    else of the LR state's own SSH.
    """
    m = lr_model(size)
    t = ssh_per_psi() * m.a[0].to(torch.float64)
    if defilter:
        g = filter_gain_lr(m.nx)
        t = t * torch.where(g > 0, 1.0 / torch.where(g > 0, g, torch.ones_like(g)), torch.zeros_like(g))
    return t.to(device)


def obs_field_map(size: str, device="cpu"):
    """The field the SSH observations sample, as a linear map of the LR state (``FieldMap``)."""
    from .problems import FieldMap

    return FieldMap(geometry(size), ssh_transfer(size, True, device), "ssh")


def coarse_filter(f: np.ndarray) -> np.ndarray:
    """The challenge's coarse-graining filter (Gaussian, LR Nyquist removed) applied to LR grid fields."""
    n = f.shape[-1]
    g = filter_gain_lr(n).numpy()
    return np.fft.irfft2(np.fft.rfft2(f) * g, s=f.shape[-2:])


def reflect_samples(samples, which, length_km: float):
    """``samples`` (training pairs, dim ``sample``) with the world's north-south mirror image taken of the
    samples where ``which`` (bool, per sample) is True: every field f(x, y) -> -f(x, L - y), observation
    positions y -> L - y, observed values -> -value; times, x, errors and masks unchanged.

    The two-layer QG equations on the beta-plane with a zonal background shear are invariant under
    y -> -y with psi -> -psi (every term of dq/dt changes sign: advection, beta v, the shear terms, drag,
    the isotropic filter), so the mirrored trajectory is another solution, and every field the challenges
    hold (q, psi, SSH, S) is linear in psi. ``tests/test_augmentation.py`` checks it on the LR model.
    x -> -x is no symmetry (the mean flow advects eastward)."""
    which = np.asarray(which, bool)
    if not which.any():
        return samples

    def mirror(name, dims, a):
        if name == "obs_y":
            mirrored = np.mod(length_km - a, length_km)
        elif name == "obs_value":
            mirrored = -a
        else:
            mirrored = -np.flip(a, axis=dims.index("y"))
        return np.where(which.reshape(-1, *[1] * (a.ndim - 1)), mirrored, a)

    return _map_sample_fields(samples, ("obs_y", "obs_value"), mirror)


def translate_samples(samples, shifts, length_km: float, n: int):
    """``samples`` (training pairs, dim ``sample``) with sample i translated periodically by ``shifts[i]``
    = (dy, dx) grid cells: every (y, x) field rolled, observation positions moved by the same distance
    (mod the domain); values, times, errors and masks unchanged.

    The doubly periodic QG world is homogeneous (uniform beta, shear and drag), so the LR and HR models
    commute with a shift of the grid and a translated trajectory is another solution; an integer shift
    keeps every observation in the same place relative to the grid cells. ``tests/test_augmentation.py``
    checks it on the LR model and the observations."""
    shifts = np.asarray(shifts, int).reshape(-1, 2) % n
    if not shifts.any():
        return samples
    dxy = length_km / n

    def move(name, dims, a):
        if name in ("obs_y", "obs_x"):
            d = shifts[:, 0 if name == "obs_y" else 1] * dxy
            return np.mod(a + d.reshape(-1, *[1] * (a.ndim - 1)), length_km)
        axes = (dims.index("y") - 1, dims.index("x") - 1)
        return np.stack([np.roll(a[i], (sy, sx), axis=axes) for i, (sy, sx) in enumerate(shifts)])

    return _map_sample_fields(samples, ("obs_y", "obs_x"), move)


def _map_sample_fields(samples, obs_names, transform):
    """``samples`` with every (y, x) field (data variable, or non-index coordinate such as closure pairs'
    state) and every variable named in ``obs_names`` replaced by ``transform(name, dims, values)``; the
    other variables kept. The sample dim must come first in every transformed field."""
    out = samples.copy()
    fields = {k: v for k, v in samples.coords.items() if k not in samples.indexes}
    for name, v in {**fields, **samples.data_vars}.items():
        if not ("y" in v.dims and "x" in v.dims) and name not in obs_names:
            continue
        if v.dims[0] != "sample":
            raise ValueError(f"{name}: the sample dim must come first, got {v.dims}")
        new = transform(name, v.dims, np.asarray(v.values))
        out = (out.assign_coords if name in fields else out.assign)({name: (v.dims, new, v.attrs)})
    return out


class Symmetric:
    """Mixin of the QG splits: their training pairs have the world's mirror symmetry and its periodic
    translations."""

    symmetry = "north-south reflection (y -> -y, psi -> -psi)"
    translations = "periodic shifts by whole grid cells in x and y"

    def reflected(self, samples, which):
        return reflect_samples(samples, which, float(self.geometry.length[0]))

    def translated(self, samples, shifts):
        return translate_samples(samples, shifts, float(self.geometry.length[0]), int(self.geometry.shape[-1]))


class Streamfunction:
    """The streamfunction as an analysis variable: psi = invert(q) and back, both linear.

    ``inverse(psi, reference)``: q1 = lap psi1 + F1 (psi2 - psi1), q2 = lap psi2 + F2 (psi1 - psi2),
    with the domain-mean PV (invisible to psi) taken from ``reference``.
    """

    def __init__(self, size: str, device="cpu"):
        self.model = lr_model(size, device)

    def forward(self, q):
        return self.model.invert(q)

    def inverse(self, psi, reference):
        m = self.model
        ph = torch.fft.rfft2(psi)
        k2 = m.wv2.to(ph.real.dtype)
        q1 = -k2 * ph[..., 0, :, :] + m.F1 * (ph[..., 1, :, :] - ph[..., 0, :, :])
        q2 = -k2 * ph[..., 1, :, :] + m.F2 * (ph[..., 0, :, :] - ph[..., 1, :, :])
        q = torch.fft.irfft2(torch.stack([q1, q2], -3), s=psi.shape[-2:])
        return q - q.mean((-2, -1), keepdim=True) + reference.mean((-2, -1), keepdim=True)
