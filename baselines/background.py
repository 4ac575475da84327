"""``background``: the background itself as the analysis (no assimilation).

- ``l96-da``: the 48 h forecast from the perturbed truth; its gain is 0 by
  definition, and every DA method's gain is measured against it.
- ``l96-cycle``: a free model run from the cold start (the climatological
  mean), since the harness forecasts this "analysis" every cycle; on a chaotic
  system its error saturates at about sqrt(2) times the climatological RMS.

Not offered for ``l96-fc48``: there the reference row "forecast from
background" is exactly this method.
"""
from __future__ import annotations

import xarray as xr

from challenges.l96_cycle import L96_CYCLING
from challenges.qg_cycle import QG_CYCLING

from .base import Method


class Background(Method):
    name = "background"
    summary = "the background as the analysis (no assimilation)"
    applies_to = (*L96_CYCLING, "l96-da",
                  "qg-da", "qg-da-sparse", "qg-da-dense", *QG_CYCLING)  # QG: baselines/qg_floors.py

    def predict(self, case: xr.Dataset) -> xr.Dataset:
        if getattr(self.challenge, "world", None) == "qg":  # QG: the state variable is q
            return xr.Dataset({"q": case["background"]})
        return xr.Dataset({"x": case["background"]})
