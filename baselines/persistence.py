"""``persistence``: the latest observation of each variable, held.

For observations of state variables at grid points (``observes = "state"``):

- cycling: each variable keeps its most recent observed value (zero-order
  hold of the observations); before a variable's first observation, the
  cycle-0 background (the climatological mean). With every variable observed
  each cycle this is the observations themselves (RMSE ~ sigma). Stateful
  across cycles; reset at cycle 0.
- one-step DA: the observations where observed, the background elsewhere.
- forecast: that state at +0, held unchanged at every lead (the classical
  persistence forecast).
"""
from __future__ import annotations

import lazy_loader as lazy

from .base import Method, Supports, held

torch = lazy.load("torch")


class Persistence(Method):
    name = "persistence"
    summary = "latest observation of each variable held (background where never observed)"
    supports = Supports(families=("analysis", "cycling", "forecast"), observes=("state",))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last = None

    def predict(self, problem):
        prior = problem.background.mean(1) if problem.ensemble else problem.background
        if problem.cycle is not None:
            if problem.cycle == 0 or self._last is None:
                self._last = prior
            prior = self._last
        shape = prior.shape
        obs = problem.obs
        x = torch.where(obs.valid.reshape(shape), obs.values.reshape(shape), prior)
        if problem.cycle is not None:
            self._last = x
        return held(problem, problem.result(x))
