"""``climatology``: the training-split mean state, whatever the observations.

The floor every DA method must beat by far. For Lorenz-96 it is the time and
trajectory mean of the training truth (about 2.35 for every variable); its
RMSE is the climatological RMS deviation (about 3.6 in ``l96-cycle``, where
DAPPER's ``Climatology`` row reads 3.6). In ``l96-fc48`` the same state is the
forecast at every lead (not a model run from it).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from challenges.l96_cycle import L96_CYCLING
from challenges.qg_cycle import QG_CYCLING

from .base import Method


def truth_of(train: xr.Dataset) -> xr.DataArray:
    """The true states of a training split: ``x_true`` for one-step challenges, else ``x``."""
    return train["x_true"] if "x_true" in train else train["x"]


def as_forecast(x: xr.DataArray, challenge) -> xr.DataArray:
    """``x`` held constant over the challenge's forecast leads (when it has any)."""
    leads = getattr(challenge, "leads", None)
    if leads is None:
        return x
    lead = xr.DataArray(np.asarray(leads), dims="lead", attrs={"units": "hours"})
    return x.expand_dims(lead=lead).transpose(*[d for d in x.dims if d != "i"], "lead", "i")


class Climatology(Method):
    name = "climatology"
    summary = "training-split mean state (no observations used)"
    applies_to = (*L96_CYCLING, "l96-da", "l96-fc48",
                  # QG (baselines/qg_floors.py): homogeneous training mean
                  "qg-map", "qg-map-swath", "qg-map-random", "qg-da", "qg-da-sparse", "qg-da-dense", "qg-fc48",
                  *QG_CYCLING)
    reference = "DAPPER Climatology; Sakov & Oke (2008)"

    def fit(self, train: xr.Dataset, val: xr.Dataset) -> None:
        if getattr(self.challenge, "world", None) == "qg":  # QG: baselines/qg_floors.py
            from . import qg_floors

            return qg_floors.climatology_fit(self, train)
        x = truth_of(train)
        self.mean = x.mean([d for d in x.dims if d not in self.challenge.state_dims]).load()

    def predict(self, case: xr.Dataset) -> xr.Dataset:
        if getattr(self.challenge, "world", None) == "qg":  # QG: baselines/qg_floors.py
            from . import qg_floors

            return qg_floors.climatology_predict(self, case)
        bg = case["background"]
        batch = bg.isel(member=0, drop=True) if "member" in bg.dims else bg
        x = xr.zeros_like(batch) + self.mean
        return xr.Dataset({"x": as_forecast(x.transpose(*batch.dims), self.challenge)})

    def describe(self) -> dict:
        return {"mean_state_average": float(self.mean.mean())}
