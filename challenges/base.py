"""What every challenge defines (DESIGN §4) and the shared machinery.

A challenge is one file in ``challenges/`` holding a subclass of
``Challenge`` and one line in ``bench/registry.py``. It states its world and
splits, what a method receives (``train_val``, ``cases``), the exact format
of a prediction (``template``: variables, dims, coords), and how a
prediction is scored (``score``: metric name -> value and bootstrap interval
over test cases). The harness does everything else: data, fit, predict,
validation, results, leaderboard.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr


@dataclass(frozen=True)
class Metric:
    """A leaderboard column: key in results JSON, header, direction, format."""

    key: str
    header: str
    higher_is_better: bool
    fmt: str = "{:.3f}"
    #: best value when neither larger nor smaller is better (spread/skill: 1)
    target: float | None = None


@dataclass
class Score:
    """One metric's value with its 95 % bootstrap interval over test cases."""

    value: float
    low: float = float("nan")
    high: float = float("nan")
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"value": _f(self.value), "ci95": [_f(self.low), _f(self.high)]}
        out.update(self.extra)
        return out


def _f(x):
    x = float(x)
    return None if not np.isfinite(x) else x


class Challenge:
    """Base class. Subclasses set the class attributes and implement the hooks."""

    name: str = ""
    world: str = ""
    summary: str = ""
    #: leaderboard columns, primary metric first
    metrics: tuple[Metric, ...] = ()
    #: the dims that index test cases in a prediction (bootstrap resamples these)
    case_dim: str = "traj"
    #: the variable(s) a prediction must hold
    variables: tuple[str, ...] = ()
    #: dims a prediction may add to every variable (``member`` for ensembles)
    optional_dims: tuple[str, ...] = ()
    description: str = ""
    #: how to read the leaderboard table (printed under the challenge's heading): what bounds the
    #: scores and why a classical method may gain little over a floor. Not a result: results live
    #: in the JSON files.
    leaderboard_note: str = ""

    # -- data ---------------------------------------------------------------
    def data_dir(self, size: str, root=None) -> Path:
        from data_scripts.generate import dataset_path

        return dataset_path(self.world, size, root)

    def open(self, size: str, split: str, store: str = "fields", root=None) -> xr.Dataset:
        """A split's store, lazily (dask-backed)."""
        return xr.open_zarr(self.data_dir(size, root) / split / f"{store}.zarr", consolidated=False)

    # -- what methods receive ----------------------------------------------------
    def train_val(self, size: str, root=None):
        """(train, val) handed to ``Method.fit``."""
        return self.open(size, "train", root=root), self.open(size, "val", root=root)

    def cases(self, size: str, root=None):
        """Iterator of test cases handed to ``Method.predict``."""
        raise NotImplementedError

    def run(self, method, size: str, root=None, progress=None) -> xr.Dataset:
        """Predict every test case and assemble one prediction (cycling overrides this)."""
        preds = []
        for case in self.cases(size, root):
            preds.append(method.predict(case))
            if progress is not None:
                progress(1)
        return self.assemble(preds, size, root)

    def assemble(self, preds: list, size: str, root=None) -> xr.Dataset:
        """Concatenate per-case predictions along ``case_dim`` in template order."""
        out = xr.concat(preds, dim=self.case_dim)
        tmpl = self.template(size, root)
        return out.assign_coords({k: tmpl[k] for k in tmpl.coords if k in out.dims or k in out.coords})

    def n_cases(self, size: str, root=None) -> int:
        return int(self.template(size, root).sizes[self.case_dim])

    # -- submissions ---------------------------------------------------------
    def template(self, size: str, root=None) -> xr.Dataset:
        """A valid prediction filled with NaN: the exact format a submission must have."""
        raise NotImplementedError

    def truth(self, size: str, root=None) -> xr.Dataset:
        """The reference a prediction is scored against (same format as the template)."""
        raise NotImplementedError

    # -- scoring -------------------------------------------------------------
    def score(self, pred: xr.Dataset, size: str, root=None) -> dict[str, Score]:
        raise NotImplementedError

    def references(self, size: str, root=None) -> dict[str, tuple[xr.Dataset, str]]:
        """Reference rows {name: (prediction, note)} scored alongside methods (e.g. forecast from truth)."""
        return {}

    def info(self, size: str) -> dict:
        """Settings of the challenge at a size, recorded in every results file."""
        return {"world": self.world, "size": size}
