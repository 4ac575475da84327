"""The QG parts of the floors ``climatology`` and ``background``.

``climatology``: the two-layer QG world is statistically homogeneous on its
doubly periodic domain, so the climatological mean is constant in space: the
training mean over trajectories, times and grid points, per layer for q
(0 up to round-off: PV anomalies and streamfunctions have zero domain mean).
A pointwise time mean of a few training trajectories would only add sampling
noise. Predictions: SSH maps (``qg-map`` family), the state q (``qg-da``
family, ``qg-cycle``), held at every lead (``qg-fc48``; the LR model run from
a spatially constant state leaves it unchanged anyway).

``background``: the background as the analysis (``qg-da`` family: gain 0 by
definition; ``qg-cycle``: a free run from the cold start, i.e. the
climatological mean, which the LR model leaves unchanged: the no-assimilation
floor).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from challenges.qg_cycle import QG_CYCLING

CLIMATOLOGY = ("qg-map", "qg-map-swath", "qg-map-random", "qg-da", "qg-da-sparse", "qg-da-dense", "qg-fc48",
               *QG_CYCLING)
BACKGROUND = ("qg-da", "qg-da-sparse", "qg-da-dense", *QG_CYCLING)


def is_qg(challenge) -> bool:
    return getattr(challenge, "world", None) == "qg"


def climatology_fit(method, train: xr.Dataset) -> None:
    if "ssh" in method.challenge.variables:
        method.qg_mean = float(train["ssh"].mean().values)
    else:
        method.qg_mean = train["q"].mean([d for d in train["q"].dims if d != "lev"]).values.astype(np.float64)
    method.mean = np.asarray(method.qg_mean)


def climatology_predict(method, case: xr.Dataset) -> xr.Dataset:
    if "ssh" in method.challenge.variables:
        shape = (case.sizes["time"], case.sizes["y"], case.sizes["x"])
        return xr.Dataset({"ssh": (("time", "y", "x"), np.full(shape, method.qg_mean))},
                          coords={k: case[k] for k in ("time", "y", "x")})
    bg = case["background"]
    if "member" in bg.dims:
        bg = bg.isel(member=0, drop=True)
    mean = xr.DataArray(method.qg_mean, dims=("lev",), coords={"lev": bg["lev"]})
    q = (xr.zeros_like(bg, dtype=np.float64) + mean).transpose(*bg.dims)
    leads = getattr(method.challenge, "leads", None)
    if leads is not None:
        lead = xr.Variable("lead", np.asarray(leads), {"units": "hours"})
        q = q.expand_dims(lead=lead).transpose(*[d for d in bg.dims if d not in ("lev", "y", "x")], "lead",
                                               "lev", "y", "x")
    return xr.Dataset({"q": q})


def background_predict(method, case: xr.Dataset) -> xr.Dataset:
    return xr.Dataset({"q": case["background"]})
