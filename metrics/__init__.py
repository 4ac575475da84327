"""Metrics of OSSE Bench: pure functions on xarray DataArrays (numpy- or dask-backed).

Imports nothing else of the project. Definitions: docs/metrics.md and the module docstrings.
"""

from .bootstrap import bootstrap_ci
from .closure import correlation, r2, similarity, spectral_rmse, wasserstein1
from .ensemble import case_errors, crps, rank_histogram, spread_skill
from .cycling import block_means, divergence_cycles, time_blocks
from .forecast import acc_by_lead, anomaly_correlation, rmse_by_lead
from .intervals import bootstrap_sums, isotropic_lambda, rmse_mu_sigma
from .rmse import per_time_sums, score_by_time, scores, scores_ci, scores_from_sums
from .spectral import (
    isotropic_from_psd,
    isotropic_psd,
    isotropic_resolution,
    isotropic_spectrum,
    ring_resolution,
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
    "case_errors",
    "ring_resolution",
    "spread_skill",
    "rank_histogram",
    "rmse_by_lead",
    "acc_by_lead",
    "anomaly_correlation",
    "bootstrap_sums",
    "rmse_mu_sigma",
    "isotropic_lambda",
    "time_blocks",
    "block_means",
    "divergence_cycles",
    "r2",
    "correlation",
    "wasserstein1",
    "spectral_rmse",
    "similarity",
    "bootstrap_ci",
]
