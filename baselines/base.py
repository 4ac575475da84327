"""The one interface every method implements (DESIGN §5).

A method is one file in ``baselines/`` holding a subclass of ``Method`` and
one line in ``bench/registry.py``. The harness calls ``fit`` once with the
challenge's training and validation splits, then ``predict`` once per test
case (once per cycle for the cycling challenges, where the harness owns the
forecast step). What a split and a case hold is stated by each challenge
(``challenges/<name>.py``): xarray Datasets with physical coordinates.

Classical methods estimate their statistics (B, OI scales, inflation) from
``train``/``val`` only, never from the test truth.
"""
from __future__ import annotations

import xarray as xr


class Method:
    """Base class: override ``fit`` (optional) and ``predict``."""

    name: str = "method"
    summary: str = ""
    #: challenge names this method applies to (declared, not guessed)
    applies_to: tuple[str, ...] = ()
    #: free text shown in the leaderboard's Notes column
    notes: str = ""
    reference: str = ""

    def __init__(self, challenge=None, size: str = "small", seed: int = 0, device: str | None = None):
        self.challenge = challenge
        self.size = size
        self.seed = seed
        self.device = device or default_device()

    def fit(self, train, val) -> None:
        """Learn or tune from the training and validation splits (no-op by default)."""

    def predict(self, case: xr.Dataset) -> xr.Dataset:
        raise NotImplementedError

    def describe(self) -> dict:
        """Tuned parameters and anything a reader needs to reproduce the row."""
        return {}


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
