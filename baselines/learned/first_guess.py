"""Training pairs with a first guess: a split whose mapping pairs carry another method's map of each day.

``FirstGuessSplit(split, maps, key)`` wraps a mapping ``Split``: its training pairs gain a
``first_guess`` (sample, y, x) field, the map of the sample's (trajectory, day) from ``maps``
(``maps(split)`` -> (n_traj, n_days, *grid), computed on first use), and its problems carry
it (``WindowProblem.first_guess``), so a learned method is trained to correct it. The field
is a (y, x) field of the pairs, so the world's augmentations (mirror, translations) act on it
as on the target; ``key`` (what made the maps) joins the pairs key, so a checkpoint trained on
one first guess is never reused for another.
"""
from __future__ import annotations

from dataclasses import replace

import lazy_loader as lazy
import numpy as np

torch = lazy.load("torch")


class FirstGuessSplit:
    def __init__(self, split, maps, key: dict):
        self._split, self._maps, self._key = split, maps, dict(key)

    def __getattr__(self, name):
        return getattr(self._split, name)

    def training_pairs(self):
        pairs = self._split.training_pairs()
        m = np.asarray(self._maps(self._split), dtype=np.float64)
        fg = m.reshape(-1, *m.shape[-2:])
        if fg.shape != pairs["target"].shape:
            raise ValueError(f"first guess maps {fg.shape} do not match the training pairs {pairs['target'].shape}")
        return pairs.assign(first_guess=(("sample", "y", "x"), fg))

    def problem(self, samples, device="cpu"):
        p = self._split.problem(samples, device=device)
        fg = torch.as_tensor(np.asarray(samples["first_guess"].values, np.float64), device=device)
        return replace(p, first_guess=fg)

    def pairs_key(self) -> dict:
        return {**self._split.pairs_key(), "first_guess": self._key}
