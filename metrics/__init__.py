"""Metrics of OSSE Bench: pure functions on xarray DataArrays (numpy- or dask-backed).

Imports nothing else of the project. Definitions: DESIGN.md §7 and the module docstrings.
"""

from .bootstrap import bootstrap_ci
from .closure import correlation, r2, similarity, spectral_rmse, wasserstein1
from .ensemble import crps, rank_histogram, spread_skill
from .forecast import acc_by_lead, rmse_by_lead
from .rmse import per_time_sums, score_by_time, scores, scores_ci, scores_from_sums
from .spectral import (
    isotropic_from_psd,
    isotropic_psd,
    isotropic_resolution,
    isotropic_spectrum,
    score_spectrum,
    spacetime_psd,
    spacetime_resolution,
    spectral_resolution,
    spectral_resolution_ci,
)

__all__ = [
    "scores",
    "score_by_time",
    "per_time_sums",
    "scores_from_sums",
    "scores_ci",
    "spectral_resolution",
    "spacetime_psd",
    "spacetime_resolution",
    "spectral_resolution_ci",
    "isotropic_resolution",
    "isotropic_psd",
    "isotropic_from_psd",
    "isotropic_spectrum",
    "score_spectrum",
    "crps",
    "spread_skill",
    "rank_histogram",
    "rmse_by_lead",
    "acc_by_lead",
    "r2",
    "correlation",
    "wasserstein1",
    "spectral_rmse",
    "similarity",
    "bootstrap_ci",
]
