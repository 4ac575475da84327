"""Typed problems: what a challenge hands a method (see docs/methods.md).

Challenges read their stores and build these frozen dataclasses; methods are
algorithms over them and never ask which world they run in. Tensors are
float64, batched over a leading dim B (test cases, trajectories, tuning
trials, flattened), optionally with an ensemble dim M after it.

* ``Observations``: values, positions (in the geometry's units), instrument
  error std ``sigma``, representativeness error std ``sigma_repr`` (the error of
  an observation of the finer-scale truth relative to the state on the grid;
  0 where the observations sample the state itself), and a ``valid`` mask
  (padding, unobserved variables). ``error_var()`` is R = sigma² + sigma_repr².
* ``ObservationOperator``: the linear H of a challenge, the composition of a
  ``FieldMap`` (state -> the observed variable on the grid, e.g. PV -> SSH,
  spectral multipliers on periodic grids) and a sampler (the grid field at
  the observation positions: a selection, or exact trigonometric
  interpolation), each with its adjoint.
* ``AnalysisProblem``: background, observations, H, geometry (one-step DA,
  forecasts, and every cycle of a cycling experiment, which adds ``cycle``).
* ``MappingProblem``: observations over a time window, the output times and
  the grid (no background, no dynamics).
* ``Split``: what ``Method.fit`` receives for train and val (never test):
  truth states, (background, truth) pairs, validation problems and a
  validation loss for tuning, and the training pairs of learned methods.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import lazy_loader as lazy
import numpy as np

from .geometry import Geometry

torch = lazy.load("torch")
xr = lazy.load("xarray")

MEMBER = "member"


# -- observations and the observation operator ------------------------------------------------


@dataclass(frozen=True)
class Observations:
    values: torch.Tensor          # (B, P)
    sigma: torch.Tensor           # (B, P) instrument error std
    positions: torch.Tensor       # (B, P, ndim) in the geometry's units
    valid: torch.Tensor           # (B, P) bool
    sigma_repr: float = 0.0       # representativeness error std
    times: torch.Tensor | None = None   # (B, P) observation times (days), mapping only

    @property
    def B(self) -> int:
        return self.values.shape[0]

    @property
    def P(self) -> int:
        return self.values.shape[-1]

    def error_var(self, which: str = "total") -> torch.Tensor:
        """R per observation (B, P): ``total`` sigma² + sigma_repr², ``instrument`` sigma²; 1 where invalid."""
        if which not in ("total", "instrument"):
            raise ValueError(f"observation error must be 'total' or 'instrument', got {which!r}")
        r = self.sigma ** 2 + (self.sigma_repr ** 2 if which == "total" else 0.0)
        return torch.where(self.valid, r, torch.ones_like(r))

    def rinv(self, which: str = "total") -> torch.Tensor:
        """R^-1 per observation (B, P), 0 where invalid."""
        return torch.where(self.valid, 1.0 / self.error_var(which), torch.zeros_like(self.values))

    def filled(self) -> torch.Tensor:
        """Values with 0 where invalid."""
        return torch.where(self.valid, self.values, torch.zeros_like(self.values))


class FieldMap:
    """The observed variable on the grid as a linear function of the state.

    ``transfer`` None: the state itself (single-level state). Otherwise real spectral
    multipliers t_l(k) (levels, ny, nx//2+1) of a periodic 2-D grid: f = irfft2(sum_l
    t_l rfft2(x_l)); real and even in k, so the adjoint multiplies by the same t_l.
    """

    def __init__(self, geometry: Geometry, transfer: torch.Tensor | None = None, name: str = "x"):
        self.geometry = geometry
        self.transfer = transfer
        self.name = name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., *state_shape) -> (..., *grid_shape)."""
        if self.transfer is None:
            return x
        t = self.transfer.to(x.device)
        return torch.fft.irfft2((t * torch.fft.rfft2(x)).sum(-3), s=self.geometry.shape)

    def adjoint(self, f: torch.Tensor) -> torch.Tensor:
        """f (..., *grid_shape) -> (..., *state_shape)."""
        if self.transfer is None:
            return f
        t = self.transfer.to(f.device)
        return torch.fft.irfft2(t * torch.fft.rfft2(f).unsqueeze(-3), s=self.geometry.shape)


class ObservationOperator:
    """H = sample o field: state (B, [M], *state_shape) -> (B, [M], P), linear, with ``adjoint``.

    ``sampler``: None when every observation is of a grid value at the grid point it is
    indexed by (P = n_points, selection by ``valid``: Lorenz-96), else an object with
    ``forward(f (B, [M], *grid)) -> (B, [M], P)`` and ``adjoint(w (B, P)) -> (B, *grid)``
    (``data_scripts.obs.TrigInterpolator`` on periodic 2-D grids).
    """

    def __init__(self, field_map: FieldMap, sampler=None):
        self.field = field_map
        self.sampler = sampler

    @property
    def selection(self) -> bool:
        return self.sampler is None

    def sample(self, f: torch.Tensor) -> torch.Tensor:
        if self.sampler is None:
            return f.reshape(*f.shape[:f.ndim - self.field.geometry.ndim], -1)
        return self.sampler.forward(f)

    def sample_adjoint(self, w: torch.Tensor) -> torch.Tensor:
        if self.sampler is None:
            return w.reshape(*w.shape[:-1], *self.field.geometry.shape)
        return self.sampler.adjoint(w)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.sample(self.field(x))

    def adjoint(self, w: torch.Tensor) -> torch.Tensor:
        return self.field.adjoint(self.sample_adjoint(w))


# -- problems -------------------------------------------------------------------------------


def _param(value, batch_dims: tuple, batch_shape: tuple, B: int, device) -> torch.Tensor:
    """A per-experiment parameter as (B,): a number, or a DataArray over some batch dims (``trial``)."""
    if isinstance(value, xr.DataArray):
        template = xr.DataArray(np.zeros(batch_shape), dims=batch_dims)
        v = value.broadcast_like(template).transpose(*batch_dims).values
        return torch.as_tensor(np.asarray(v, dtype=np.float64).ravel(), device=device)
    return torch.full((B,), float(value), dtype=torch.float64, device=device)


@dataclass(frozen=True)
class AnalysisProblem:
    """Background + observations -> an analysis of the state (one-step DA, forecasts, each cycle).

    ``background`` (B, [M], *state_shape); ``batch_dims``/``batch_shape``/``coords`` say
    how B unflattens into the prediction's dims; ``var`` is the prediction's variable.
    ``cycle``: the cycle index in cycling (0: a cold start whose background is the
    climatological mean, without members), None for one-step problems. ``transforms``:
    optional pairs of linear maps the world offers on the state, e.g.
    ``"streamfunction": (q -> psi, psi -> q)``, for methods that analyse a smoother
    variable.
    """

    background: torch.Tensor
    obs: Observations
    H: ObservationOperator
    geometry: Geometry
    var: str
    batch_dims: tuple[str, ...]
    batch_shape: tuple[int, ...]
    coords: dict = field(default_factory=dict)
    cycle: int | None = None
    transforms: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    @property
    def B(self) -> int:
        return self.background.shape[0]

    @property
    def ensemble(self) -> bool:
        return self.background.ndim == 2 + len(self.geometry.state_shape)

    @property
    def device(self):
        return self.background.device

    def param(self, value) -> torch.Tensor:
        return _param(value, self.batch_dims, self.batch_shape, self.B, self.device)

    def with_background(self, background: torch.Tensor) -> AnalysisProblem:
        return replace(self, background=background)

    def result(self, x: torch.Tensor) -> xr.Dataset:
        """The prediction Dataset of an analysis x (B, [M], *state_shape)."""
        sdims = self.geometry.state_dims
        members = x.ndim == 2 + len(sdims)
        arr = x.detach().cpu().numpy().reshape(*self.batch_shape, *x.shape[1:])
        dims = (*self.batch_dims, MEMBER, *sdims) if members else (*self.batch_dims, *sdims)
        return xr.Dataset({self.var: (dims, arr)}, coords={d: c for d, c in self.coords.items() if d in dims})


@dataclass(frozen=True)
class MappingProblem:
    """Observations over a window -> maps of the observed variable at ``times`` (no background).

    ``obs`` has B = 1 and ``times``; ``smoothing`` (maps -> maps) is the filter that
    relates the observed field to the scored one (the truth is coarse-grained while the
    observations sample the fine-scale field), None where there is none.
    """

    obs: Observations
    times: np.ndarray
    geometry: Geometry
    var: str
    coords: dict = field(default_factory=dict)
    smoothing: Callable | None = None
    attrs: dict = field(default_factory=dict)

    def windows(self, half_window: float, device=None) -> WindowProblem:
        """One window per output day: the observations within +-``half_window`` days, times relative to the day."""
        o = self.obs
        t = o.times[0]
        days = torch.tensor(np.asarray(self.times), dtype=t.dtype, device=t.device)
        order = torch.argsort(t)
        t_sorted = t[order]
        lo = torch.searchsorted(t_sorted, days - half_window - 1e-9)
        hi = torch.searchsorted(t_sorted, days + half_window + 1e-9, right=True)
        P = max(1, int((hi - lo).max()))
        ar = torch.arange(P, device=t.device)
        rows = (lo[:, None] + ar[None, :]).clamp_max(len(t) - 1)
        valid = ar[None, :] < (hi - lo)[:, None]
        idx = order[rows]

        def take(a):
            return a[0][idx]

        obs = Observations(values=take(o.values), sigma=take(o.sigma), positions=o.positions[0][idx],
                           valid=valid & take(o.valid), sigma_repr=o.sigma_repr, times=take(o.times) - days[:, None])
        if device is not None:
            obs = replace(obs, **{k: getattr(obs, k).to(device) for k in ("values", "sigma", "positions", "valid", "times")})
        return WindowProblem(obs=obs, geometry=self.geometry, var=self.var, half_window=float(half_window))

    def result(self, maps) -> xr.Dataset:
        """The prediction Dataset of maps (len(times), *grid_shape)."""
        arr = maps.detach().cpu().numpy() if torch.is_tensor(maps) else np.asarray(maps)
        dims = ("time", *self.geometry.axes)
        return xr.Dataset({self.var: (dims, arr.astype(np.float64))},
                          coords={d: c for d, c in self.coords.items() if d in dims})


@dataclass(frozen=True)
class WindowProblem:
    """Observations around each of B days -> the map of each day (learned mapping; one training sample each).

    ``obs`` (B, P): positions, values, sigma, ``valid`` (padding) and ``times`` relative to the
    map's day, within +-``half_window`` days. ``first_guess`` (B, *grid), optional: a map of each
    day from another method (e.g. OI) that a learned method corrects.
    """

    obs: Observations
    geometry: Geometry
    var: str
    half_window: float
    first_guess: torch.Tensor | None = None

    @property
    def B(self) -> int:
        return self.obs.B

    @property
    def device(self):
        return self.obs.values.device

    def within(self, half_window: float) -> WindowProblem:
        """The same samples with only the observations within +-``half_window`` days valid."""
        if half_window > self.half_window + 1e-9:
            raise ValueError(f"a window of +-{half_window:g} days needs pairs of at least that window; "
                             f"these hold +-{self.half_window:g}")
        valid = self.obs.valid & (self.obs.times.abs() <= half_window + 1e-9)
        return replace(self, obs=replace(self.obs, valid=valid), half_window=float(half_window))


@dataclass(frozen=True)
class ClosureProblem:
    """Coarse states -> the subgrid forcing S, the term added to the coarse model's tendency.

    ``states`` (B, *state_shape); ``model``: the coarse model, with
    ``run_closed(x0, n_steps, every, closure)`` (a generator of (steps, states) of one
    continuous run of dx/dt = RHS(x) + closure(x)), ``step_closed(x, n, closure)``, ``dt``, and
    the world's operators a physical closure needs (a QG model's ``invert``, ``velocities``,
    wavenumbers ``k``, ``l``, layer depths ``Hi``); ``steps_per_snapshot``: model steps between
    stored states.
    """

    states: torch.Tensor
    geometry: Geometry
    model: object
    var: str
    batch_dims: tuple[str, ...]
    batch_shape: tuple[int, ...]
    coords: dict = field(default_factory=dict)
    steps_per_snapshot: int = 1

    @property
    def B(self) -> int:
        return self.states.shape[0]

    @property
    def device(self):
        return self.states.device

    def result(self, S: torch.Tensor) -> xr.Dataset:
        arr = S.detach().cpu().numpy().reshape(*self.batch_shape, *S.shape[1:])
        dims = (*self.batch_dims, *self.geometry.state_dims)
        return xr.Dataset({self.var: (dims, arr)}, coords={d: c for d, c in self.coords.items() if d in dims})


# -- what fit() receives ----------------------------------------------------------------------


class Split:
    """One split (train or val) of a challenge, as ``Method.fit`` sees it. Never the test split.

    Challenges subclass it per task family. Everything is computed on first use and
    cached; arrays are float64 numpy.
    """

    name: str = "train"
    family: str = ""
    geometry: Geometry
    #: the observed variable as a function of the state (positions-independent part of H)
    field_map: FieldMap

    def states(self) -> np.ndarray:
        """True states of the split, (n, *state_shape) (mapping: the true maps, (n, *grid_shape))."""
        raise NotImplementedError

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(background, truth) of every training case, each (n, *state_shape) (analysis families)."""
        raise NotImplementedError

    def forecast_errors(self) -> np.ndarray:
        """One-cycle forecasts from the true states minus the truth a cycle later (cycling), (n, *state_shape)."""
        raise NotImplementedError

    def problems(self, trials: int | None = None) -> Iterator:
        """The split's problems in the test format (an extra leading ``trial`` dim of ``trials`` copies)."""
        raise NotImplementedError

    def pair_problems(self) -> Iterator:
        """Mapping: one problem per trajectory in the test format over every day of its training pairs."""
        raise NotImplementedError(f"{type(self).__name__} has no pair problems")

    def evaluate(self, predict: Callable, n_trials: int | None = None) -> np.ndarray:
        """Validation loss (lower is better) of ``predict`` per trial: the challenge's primary error.

        ``predict`` reads per-trial parameters through ``problem.param(DataArray(..., dims="trial"))``;
        a trial that blew up scores +inf.
        """
        raise NotImplementedError

    def training_pairs(self) -> xr.Dataset:
        """Samples with the inputs of a test case and a ``target`` (see ``Challenge.training_pairs``)."""
        raise NotImplementedError

    def problem(self, samples, device="cpu"):
        """The typed problem of a batch of ``training_pairs`` samples (batch dim ``sample``)."""
        raise NotImplementedError

    #: the world's mirror symmetry of the training pairs (None: none declared; see ``reflected``)
    symmetry: str | None = None

    def reflected(self, samples, which):
        """``training_pairs`` samples with the mirror image (``symmetry``) taken of those where ``which`` is
        True: more training samples that are solutions of the same equations (augmentation)."""
        raise NotImplementedError(f"{type(self).__name__} declares no symmetry")

    #: the world's translations of the training pairs (None: none declared; see ``translated``)
    translations: str | None = None

    def translated(self, samples, shifts):
        """``training_pairs`` samples, sample i shifted by ``shifts[i]`` grid cells per spatial axis
        (``translations``): more training samples of a homogeneous world (augmentation)."""
        raise NotImplementedError(f"{type(self).__name__} declares no translations")

    def pairs_key(self) -> dict:
        """What identifies this split's training pairs: challenges whose pairs are the same (the variants
        of a density sweep, a forecast challenge sharing its DA cases) give the same key, so a learned
        model trained for one serves the others."""
        raise NotImplementedError


def trial_dim(n_trials: int | None) -> dict:
    return {} if n_trials is None else {"trial": np.arange(n_trials)}


def flat_batch(shape: tuple) -> int:
    return math.prod(shape) if shape else 1
