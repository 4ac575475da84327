"""What every challenge defines, and the shared machinery (see docs/challenges.md).

A challenge is one file in ``challenges/`` holding a subclass of ``Challenge``
and one line in ``bench/registry.py``. It declares its world, its task
``family`` (mapping, analysis, cycling, forecast, closure), its ``geometry``
kind and what its observations are (``observes``: ``"state"``, a subset of the
state variables, or ``"points"``, a derived field at off-grid points); methods
declare which of these they support, and the registry matches the two. It
states what a method receives (``split`` for ``fit``; ``cases`` of typed
problems for ``predict``), the exact format of a prediction (``template``), and
how a prediction is scored (``score``: metric name -> value and bootstrap
interval over test cases, through ``metrics``).

Module-level imports are kept light (``lazy_loader``) so that ``bench list``
and ``bench leaderboard`` read the declarations without loading torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lazy_loader as lazy
import numpy as np

xr = lazy.load("xarray")

#: the task families a challenge may declare (methods declare which they support)
FAMILIES = ("mapping", "analysis", "cycling", "forecast", "closure")


@dataclass(frozen=True)
class Metric:
    """A leaderboard column: key in results JSON, header, direction, format."""

    key: str
    header: str
    higher_is_better: bool
    fmt: str = "{:.3f}"
    #: best value when neither larger nor smaller is better (spread/skill: 1)
    target: float | None = None

    def column(self) -> dict:
        out = {"key": self.key, "header": self.header, "higher_is_better": self.higher_is_better, "fmt": self.fmt}
        if self.target is not None:
            out["target"] = self.target
        return out


@dataclass
class Score:
    """One metric's value with its 95 % bootstrap interval over test cases.

    A value that is not a finite number is written as null and must say why (``flag``):
    ``Score.undefined("deterministic")``. The leaderboard never ranks it.
    """

    value: float
    low: float = float("nan")
    high: float = float("nan")
    extra: dict = field(default_factory=dict)

    @classmethod
    def undefined(cls, reason: str, **extra) -> Score:
        return cls(float("nan"), extra={"flag": reason, **extra})

    @classmethod
    def of(cls, triple, **extra) -> Score:
        """From a ``(value, low, high[, flag])`` tuple of ``metrics``; a flag other than "ok" is kept."""
        value, low, high, *rest = triple
        flag = rest[0] if rest else "ok"
        return cls(value, low, high, extra={**({"flag": flag} if flag != "ok" else {}), **extra})

    def to_json(self) -> dict:
        out = {"value": _f(self.value), "ci95": [_f(self.low), _f(self.high)]}
        out.update(_finite(self.extra))
        if out["value"] is None and not out.get("flag"):
            out["flag"] = "not a finite number"
        return out


def _f(x):
    x = float(x)
    return None if not np.isfinite(x) else x


def _finite(obj):
    """``obj`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return _f(obj)
    return obj


class Challenge:
    """Base class. Subclasses set the declarations and implement the hooks."""

    name: str = ""
    world: str = ""
    summary: str = ""
    #: task family: one of ``FAMILIES``
    family: str = ""
    #: geometry kind of the state: "ring" or "periodic2d" (``challenges.geometry``)
    geometry_kind: str = ""
    #: "state" (observations of state variables at grid points) or "points" (a derived field at off-grid points)
    observes: str = ""
    #: leaderboard columns, primary metric first
    metrics: tuple[Metric, ...] = ()
    #: the dim that indexes test cases in a prediction (bootstrap resamples along it)
    case_dim: str = "traj"
    #: the variable(s) a prediction must hold
    variables: tuple[str, ...] = ()
    #: dims a prediction may add to every variable (``member`` for ensembles)
    optional_dims: tuple[str, ...] = ()
    #: variables a prediction may hold besides ``variables`` (validated when present): {name: dims}
    optional_vars: dict = {}
    description: str = ""
    #: how to read the leaderboard table (printed under the challenge's heading): what bounds the
    #: scores and why a classical method may gain little over a floor. Not a result: results live
    #: in the JSON files.
    leaderboard_note: str = ""

    # -- data ---------------------------------------------------------------------------------
    def data_dir(self, size: str, root=None) -> Path:
        from data_scripts.generate import dataset_path

        return dataset_path(self.world, size, root)

    def open(self, size: str, split: str, store: str = "fields", root=None):
        """A split's store, lazily (dask-backed)."""
        return xr.open_zarr(self.data_dir(size, root) / split / f"{store}.zarr", consolidated=False)

    # -- what methods receive --------------------------------------------------------------------
    def split(self, size: str, name: str, root=None):
        """The ``train`` or ``val`` split (a ``challenges.problems.Split``) handed to ``Method.fit``."""
        if name not in ("train", "val"):
            raise ValueError(f"methods get the train and val splits only, not {name!r}")
        return self._split(size, name, root)

    def _split(self, size: str, name: str, root=None):
        raise NotImplementedError

    def training_pairs(self, size: str, split: str = "train", root=None):
        """Training samples of ``split`` ("train" or "val"; never test) as an xarray Dataset.

        A ``sample`` dim; the same input variables and coords as a test case (see the
        challenge's docstring); ``target``, the truth a method must predict. Dask-backed
        where the data are large. See the README's "Train your own model".
        """
        return self.split(size, split, root).training_pairs()

    def cases(self, size: str, root=None):
        """Iterator of the test problems handed to ``Method.predict``."""
        raise NotImplementedError

    def test_inputs(self, size: str, root=None):
        """The test cases' inputs as one Dataset (no truth), in the layout of ``training_pairs``,
        for participants who predict outside ``bench run``."""
        raise NotImplementedError(f"{self.name} gives its test inputs through bench run only")

    def run(self, method, size: str, root=None, progress=None):
        """Predict every test case and assemble one prediction (cycling overrides this)."""
        preds = []
        for problem in self.cases(size, root):
            preds.append(method.predict(problem))
            if progress is not None:
                progress(1)
        return self.assemble(preds, size, root)

    def assemble(self, preds: list, size: str, root=None):
        """Concatenate per-case predictions along ``case_dim`` in template order."""
        out = xr.concat(preds, dim=self.case_dim)
        tmpl = self.template(size, root)
        return out.assign_coords({k: tmpl[k] for k in tmpl.coords if k in out.dims or k in out.coords})

    def progress_total(self, size: str, root=None) -> tuple[int, str]:
        """(number of progress units of ``run``, their name) for the progress bar."""
        return int(self.template(size, root).sizes[self.case_dim]), "case"

    # -- submissions -------------------------------------------------------------------------------
    def template(self, size: str, root=None):
        """A valid prediction filled with NaN: the exact format a submission must have.

        Each variable carries ``valid_min``/``valid_max``: a physical bound (the training
        mean ± 1000 training standard deviations) beyond which a value is refused.
        """
        raise NotImplementedError

    def truth(self, size: str, root=None):
        """The reference a prediction is scored against (same format as the template)."""
        raise NotImplementedError

    # -- scoring -----------------------------------------------------------------------------------
    def score(self, pred, size: str, root=None) -> dict[str, Score]:
        raise NotImplementedError

    def references(self, size: str, root=None) -> dict:
        """Reference rows {name: (prediction, note)} scored alongside methods (e.g. forecast from truth)."""
        return {}

    def info(self, size: str) -> dict:
        """Settings of the challenge at a size, recorded in every results file."""
        return {"world": self.world, "size": size, "family": self.family}

    def display(self, ds, size: str):
        """The variables a figure shows of a prediction or truth Dataset (``bench plot``): its own by default."""
        return ds[list(self.variables)]

    def columns(self) -> list[dict]:
        """The leaderboard columns (from this definition, never from a results file)."""
        return [m.column() for m in self.metrics]


def bounds(values, factor: float = 1000.0) -> tuple[float, float]:
    """(mean - factor std, mean + factor std) of training values: the range a valid prediction stays in."""
    v = np.asarray(values, dtype=np.float64)
    m, s = float(v.mean()), float(v.std())
    return m - factor * s, m + factor * s
