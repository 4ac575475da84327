"""``persistence``: the latest observation of each variable, held.

What it means per challenge:

- ``l96-cycle``: each variable keeps its most recent observed value
  (zero-order hold of the observations); before a variable's first
  observation, the cycle-0 background (the climatological mean). With every
  variable observed each cycle this is the observations themselves (RMSE
  ~ sigma = 1). Stateful across cycles; reset at cycle 0.
- ``l96-da``: the observations where observed, the background elsewhere (only
  the current observations exist in a one-step case).
- ``l96-fc48``: that state at +0, held unchanged at every lead (the classical
  persistence forecast).
"""
from __future__ import annotations

import xarray as xr

from challenges.l96_cycle import L96_CYCLING

from .base import Method
from .climatology import as_forecast


class Persistence(Method):
    name = "persistence"
    summary = "latest observation of each variable held (background where never observed)"
    applies_to = (*L96_CYCLING, "l96-da", "l96-fc48")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last = None

    def predict(self, case: xr.Dataset) -> xr.Dataset:
        prior = case["background"].reset_coords(drop=True)
        if "cycle" in case.coords:
            if int(case["cycle"]) == 0 or self._last is None:
                self._last = prior
            prior = self._last
        x = case["y"].where(case["obs_mask"], prior).transpose(*prior.dims)
        if "cycle" in case.coords:
            self._last = x
        return xr.Dataset({"x": as_forecast(x, self.challenge)})
