"""``ae-oi``: the ``ae`` U-Net trained to correct the OI map (a learned residual on optimal interpolation).

Mapping only. ``oi`` (the Gaussian space-time OI, ``baselines/oi.py``) maps every
day of the train and val splits from all their observations, as it maps the test
period; the U-Net (``baselines/ae.py``: per daily time bin within +-``half_window``
days, the mean observed value and log(1 + count) per cell) also sees that day's OI
map as one more channel and predicts the correction to it, truth - OI, in units of
the training map std (``baselines.learned.first_guess``). A network with zero
output returns the OI map, so the learned part starts from OI's skill and has only
to learn what OI misses (the ocean data challenges' learned mappers also start from
the OI: 4DVarNet is initialised with it).

OI's Lx, Lt and noise are tuned on val as ``oi`` tunes them, unless ``oi_Lx``,
``oi_Lt`` and ``oi_noise`` are all given (e.g. the values the ``oi`` row of the same
challenge tuned, which the leaderboard shows), which skips the tuning. Mapping every
training day with OI costs minutes (its time is in the results, ``first_guess``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import lazy_loader as lazy
import numpy as np

from .ae import AE, AEConfig
from .base import SettingError, Supports

torch = lazy.load("torch")


@dataclass
class AEOIConfig(AEConfig):
    #: OI's parameters (km, days, dimensionless); None: tune them on val as ``oi`` does (all three or none)
    oi_Lx: float | None = None
    oi_Lt: float | None = None
    oi_noise: float | None = None

    def __post_init__(self):
        super().__post_init__()
        if sum(v is not None for v in (self.oi_Lx, self.oi_Lt, self.oi_noise)) not in (0, 3):
            raise SettingError("give all of oi_Lx, oi_Lt and oi_noise, or none of them (to tune them on val)")


class AEOI(AE):
    name = "ae-oi"
    summary = "U-Net correcting the OI map (OI's map of the day as an input channel, the correction as output)"
    supports = Supports(families=("mapping",), geometries=("periodic2d",), observes=("points",))
    Config = AEOIConfig
    reference = "Ronneberger et al. (2015); Fablet et al. (2021); Le Traon et al. (1998) for the OI"
    extra_map_inputs = 1  # the first guess

    def _oi(self):
        from .oi import OI

        c = self.config
        given = {"Lx": c.oi_Lx, "Lt": c.oi_Lt, "noise": c.oi_noise}  # all or none (AEOIConfig)
        fixed = {"tune": False, "map_start": {k: float(v) for k, v in given.items()}} if c.oi_Lx is not None else {}
        return OI(config=OI.Config(obs_error=c.obs_error, **fixed), seed=self.seed, device=self.device,
                  progress=self.progress)

    def _maps(self, split) -> np.ndarray:
        """OI's map of every day of every trajectory of ``split`` (n_traj, n_days, *grid)."""
        t0 = time.perf_counter()
        maps = np.stack([np.asarray(self.oi.predict(p)[p.var].values) for p in split.pair_problems()])
        self.first_guess_seconds[split.name] = round(time.perf_counter() - t0, 1)
        return maps

    def fit(self, train, val) -> None:
        from .learned import fit_learned
        from .learned.first_guess import FirstGuessSplit

        self.mapping = True
        self.first_guess_seconds = {}
        self.oi = self._oi()
        self.oi.fit(train, val)
        key = {"method": "oi", "params": {k: float(v) for k, v in self.oi.params.items()}}
        self.learner, self.record = fit_learned(self, FirstGuessSplit(train, self._maps, key),
                                                FirstGuessSplit(val, self._maps, key),
                                                self._make(train.geometry, True), __file__)

    def predict(self, problem):
        from .learned import predict_learned

        t0 = time.perf_counter()
        fg = torch.as_tensor(np.asarray(self.oi.predict(problem)[problem.var].values, np.float64))
        self.first_guess_seconds["test"] = round(self.first_guess_seconds.get("test", 0.0) + time.perf_counter() - t0, 1)
        return predict_learned(self, problem, first_guess=fg)

    def describe(self) -> dict:
        return {"training": self.record, "first_guess": {"method": "oi", **self.oi.describe(),
                                                         "tuning": self.oi.tuning, "seconds": self.first_guess_seconds}}
