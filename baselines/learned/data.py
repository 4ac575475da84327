"""The one LightningDataModule of the learned methods, built from ``Split.training_pairs``.

Train and val samples are the challenge's training pairs (the inputs of a test
case plus the ``target``), read once (dask-backed pairs are computed here). A
batch is a list of sample indices; ``batch(indices, device)`` turns it into
the typed problem the method predicts on at test time (``Split.problem``) and
the target tensor, so training and testing share one feature path.

Density sweep: where the pairs carry every observation of a day in a nested
order with the sweep's counts (``attrs["densities"]``), each training sample
keeps only the first n of them, n drawn per sample from the sweep, so one
model serves every density of the family (validation sample i keeps the
(i mod 3)-th density, the same every epoch). Draws, shuffling and the
resulting batches are seeded.

Augmentation (``augment``): each training sample is replaced, with probability
1/2 (seeded, its own generator, so the density draws do not change), by its
mirror image under the world's symmetry (``Split.symmetry``, e.g. QG's
north-south reflection), which is another solution of the same equations; a
world without one trains unaugmented, and the record says which happened.
With ``shift``, every training sample is also translated by a random periodic
shift of whole grid cells (``Split.translations``, QG's homogeneous doubly
periodic domain; seeded, its own generator).

Window (``window``, mapping): the pairs hold the observations within the
challenge's widest window of each map's day; a method that reads +-w days
(``half_window``) sees only those, in training as at test time.
"""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader


class _Indices(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _collate(items):
    return torch.as_tensor(items, dtype=torch.long)


class PairsDataModule(pl.LightningDataModule):
    """Train/val training pairs of a challenge's splits, batched into typed problems."""

    def __init__(self, train, val, batch_size: int = 16, seed: int = 0, max_samples: int | None = None,
                 augment: bool = False, window: float | None = None, shift: bool = False):
        super().__init__()
        self.translation = getattr(train, "translations", None) if shift else None
        self._shift_rng = np.random.default_rng([int(seed), 31])
        self.window = None if window is None else float(window)
        self.augmentation = getattr(train, "symmetry", None) if augment else None
        self._mirror_rng = np.random.default_rng([int(seed), 29])
        self.train_split, self.val_split = train, val
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.train_pairs = _load(train.training_pairs(), max_samples, seed)
        self.val_pairs = _load(val.training_pairs(), max_samples, seed + 1)
        attrs = self.train_pairs.attrs
        self.densities = [int(d) for d in attrs.get("densities", [])]
        self._rng = np.random.default_rng([self.seed, 17])
        self.normaliser = self.fit_normaliser()

    def fit_normaliser(self, max_samples: int = 512):
        """Train-split statistics (``features.Normaliser``) from at most ``max_samples`` training samples."""
        from .features import Normaliser, fit_normaliser, innovations

        n = self.train_pairs.sizes["sample"]
        pick = np.arange(n) if n <= max_samples else np.sort(
            np.random.default_rng([self.seed, 3]).choice(n, max_samples, replace=False))
        g = self.train_split.geometry
        if getattr(self.train_split, "family", None) == "closure":  # closure pairs: state x -> S (x may be a coord)
            from .features import _per_level

            x = self.train_pairs["x"].values[pick]
            S = self.train_pairs["target"].values[pick]
            return Normaliser(state_mean=_per_level(x, g.n_levels, np.mean), state_std=_per_level(x, g.n_levels, np.std),
                              inc_std=[max(v, 1e-30) for v in _per_level(S, g.n_levels, np.std)], obs_mean=0.0,
                              obs_std=1.0, innov_std=1.0, sigma_scale=1.0)
        obs, innov, sigma, bgs, truths = [], [], [], [], []
        for start in range(0, len(pick), 64):
            idx = torch.as_tensor(pick[start:start + 64])
            problem, truth = self.batch(idx, "cpu", train=True, draw=False)
            v = problem.obs.valid
            obs.append(problem.obs.values[v].numpy())
            sigma.append(problem.obs.error_var()[v].sqrt().numpy())
            truths.append(truth.numpy())
            if hasattr(problem, "background"):
                innov.append(innovations(problem, problem.background)[v].numpy())
                bgs.append(problem.background.numpy())
        obs, sigma, truth = np.concatenate(obs), np.concatenate(sigma), np.concatenate(truths)
        if bgs:
            return fit_normaliser(np.concatenate(bgs), truth, obs, np.concatenate(innov), sigma, g.n_levels)
        m, s = float(truth.mean()), float(truth.std())
        return Normaliser(state_mean=[m], state_std=[s], inc_std=[s], obs_mean=float(obs.mean()),
                          obs_std=float(obs.std()) or 1.0, innov_std=float(obs.std()) or 1.0,
                          sigma_scale=float(sigma.mean()) or 1.0)

    def describe(self) -> dict:
        return {"train_samples": int(self.train_pairs.sizes["sample"]), "val_samples": int(self.val_pairs.sizes["sample"]),
                "density_sweep": self.densities or None, "augmentation": self.augmentation,
                **({"translation": self.translation} if self.translation else {}),
                **({"window_days": self.window} if self.window is not None else {}),
                "pairs": {k: v for k, v in self.train_pairs.attrs.items() if isinstance(v, (str, int, float))}}

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(_Indices(self.train_pairs.sizes["sample"]), batch_size=self.batch_size, shuffle=True,
                          generator=g, collate_fn=_collate, num_workers=0)

    def val_dataloader(self):
        return DataLoader(_Indices(self.val_pairs.sizes["sample"]), batch_size=self.batch_size, shuffle=False,
                          collate_fn=_collate, num_workers=0)

    def batch(self, indices: torch.Tensor, device, train: bool, draw: bool = True):
        """(problem, target (B, *state_shape) float64) of the train (or val) samples ``indices``.

        ``draw``: keep a random density of the sweep per training sample (otherwise all observations)."""
        pairs, split = (self.train_pairs, self.train_split) if train else (self.val_pairs, self.val_split)
        sel = pairs.isel(sample=indices.cpu().numpy())
        if train and draw and self.augmentation:
            sel = split.reflected(sel, self._mirror_rng.random(sel.sizes["sample"]) < 0.5)
        if train and draw and self.translation:
            n = int(split.geometry.shape[-1])
            sel = split.translated(sel, self._shift_rng.integers(0, n, size=(sel.sizes["sample"], 2)))
        problem = split.problem(sel, device=device)
        if self.window is not None and hasattr(problem, "half_window"):
            problem = problem.within(self.window)
        target = torch.as_tensor(np.asarray(sel["target"].values, np.float64), device=device)
        if not hasattr(problem, "obs"):
            return problem, target
        keep = None
        if train and draw and self.densities:
            keep = self._rng.choice(self.densities, size=problem.B)
        elif not train and self.densities:  # the same densities for every validation epoch and challenge
            keep = np.asarray(self.densities)[np.asarray(indices.cpu()) % len(self.densities)]
        if keep is not None:
            problem = keep_first(problem, keep)
        return problem, target


def keep_first(problem, counts):
    """The problem with only the first ``counts[b]`` observations of each sample valid."""
    from dataclasses import replace

    P = problem.obs.P
    n = torch.as_tensor(np.minimum(np.asarray(counts), P), device=problem.device)
    valid = problem.obs.valid & (torch.arange(P, device=problem.device)[None, :] < n[:, None])
    return replace(problem, obs=replace(problem.obs, valid=valid))


def _load(ds, max_samples, seed):
    """The pairs in memory (at most ``max_samples``, a seeded subset, for quick tests)."""
    if max_samples is not None and ds.sizes["sample"] > max_samples:
        pick = np.sort(np.random.default_rng(seed).choice(ds.sizes["sample"], max_samples, replace=False))
        ds = ds.isel(sample=pick)
    return ds.load()
