"""``background``: the background itself as the analysis (no assimilation).

- one-step DA: its gain is 0 by definition, and every DA method's gain is
  measured against it;
- cycling: a free model run from the cold start (the climatological mean),
  since the harness forecasts this "analysis" every cycle; on a chaotic system
  its error saturates at about sqrt(2) times the climatological RMS (Lorenz-96),
  and a steady state stays one (QG: the eddy-free mean).

Not offered for forecast challenges, where the reference row "forecast from
background" is exactly this method.
"""
from __future__ import annotations

from .base import Method, Supports


class Background(Method):
    name = "background"
    summary = "the background as the analysis (no assimilation)"
    supports = Supports(families=("analysis", "cycling"))

    def predict(self, problem):
        return problem.result(problem.background)
