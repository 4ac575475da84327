"""``ClosureLearner``: the closures' CNN learner, with the norm of its forcing error as a setting.

The offline loss is the forcing's error per level (in units of its train-split
std) in ``forcing_norm`` (``baselines.learned.norms``): "l2", the mean squared
error (Ross et al. 2023), or "h-1", which weights the large scales, those whose
errors change the resolved energy most and build up over long online runs.
"""
from __future__ import annotations

import torch

from .learners import CNNLearner
from .norms import mean_square


class ClosureLearner(CNNLearner):
    forcing_norm: str = "l2"

    def objective(self, problem, pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        return mean_square(pred - self.target(problem, truth).to(pred.dtype), self.forcing_norm, self.geometry.ndim)
