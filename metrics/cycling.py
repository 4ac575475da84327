"""Scores of cycled analyses: time blocks after burn-in, block means, cycles until divergence."""
from __future__ import annotations

import numpy as np


def time_blocks(n_cycles: int, burn_in: int, block: int) -> list[slice]:
    """max(1, (n_cycles - burn_in) // block) equal consecutive blocks covering the cycles after
    ``burn_in`` (the remainder, fewer cycles than blocks, is dropped)."""
    n = n_cycles - burn_in
    if n <= 0:
        raise ValueError(f"burn-in ({burn_in}) must be shorter than the run ({n_cycles} cycles)")
    nb = max(1, n // block)
    size = n // nb
    return [slice(burn_in + i * size, burn_in + (i + 1) * size) for i in range(nb)]


def block_means(per_cycle: np.ndarray, blocks: list[slice]) -> np.ndarray:
    """Means of ``per_cycle`` (E, K) over each block: (E * n_blocks,) bootstrap units."""
    return np.stack([np.nanmean(per_cycle[:, b], axis=1) for b in blocks], axis=1).ravel()


def divergence_cycles(rmse: np.ndarray, threshold: float, window: int, restarted: np.ndarray | None = None) -> np.ndarray:
    """First cycle at which the trailing ``window``-cycle mean of ``rmse`` (E, K) exceeds ``threshold``
    (checked from cycle ``window - 1`` on), or at which the experiment had to be restarted after a
    blow-up (``restarted`` (E, K) bool: a restarted cycle counts as diverged); K where neither happens."""
    E, K = rmse.shape
    first = np.full(E, K)
    if K >= window:
        c = np.cumsum(rmse, axis=1)
        run = (c[:, window - 1:] - np.concatenate([np.zeros((E, 1)), c[:, :-window]], axis=1)) / window
        over = run > threshold
        first = np.where(over.any(1), over.argmax(1) + window - 1, K)
    if restarted is not None:
        r = np.asarray(restarted, dtype=bool)
        first = np.minimum(first, np.where(r.any(1), r.argmax(1), K))
    return first.astype(int)
