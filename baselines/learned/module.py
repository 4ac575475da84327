"""The LightningModule of the learned methods: a network on typed problems, trained on training pairs.

``Learner`` holds the network and the train-split ``Normaliser``; subclasses
(one per method file) implement ``forward_problem(problem)``, the network's
normalised output for a batch of problems:

* an ``AnalysisProblem``: the analysis increment per level in units of the
  training increment std, (B, levels, *grid); the analysis is
  background + std * output;
* a ``WindowProblem`` (mapping): the map of the observed field per day, in
  units of the training field std about its mean, (B, 1, *grid); with a
  ``first_guess``, the correction to it in the same units;
* a ``ClosureProblem``: the subgrid forcing per level in units of its training
  std, (B, levels, *grid).

Loss: the mean squared error in those normalised units. Optimiser AdamW with
a cosine learning-rate decay over ``max_epochs``.
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch

from .features import Normaliser, increment_scale, level_view


class Learner(pl.LightningModule):
    def __init__(self, net: torch.nn.Module, norm: Normaliser, geometry, lr: float = 1e-3, weight_decay: float = 1e-4,
                 max_epochs: int = 50, obs_error: str = "total", field_loss: float = 0.0):
        super().__init__()
        self.net = net
        self.norm = norm
        self.geometry = geometry
        self.lr, self.weight_decay, self.max_epochs = float(lr), float(weight_decay), int(max_epochs)
        self.obs_error = obs_error
        self.field_loss = float(field_loss)

    # -- what subclasses define -------------------------------------------------------------------
    def forward_problem(self, problem) -> torch.Tensor:
        raise NotImplementedError

    # -- predictions ---------------------------------------------------------------------------------
    def analysis(self, problem) -> torch.Tensor:
        """The analysis (B, *state_shape), float64."""
        g = self.geometry
        xb = problem.background.mean(1) if problem.ensemble else problem.background
        out = self.forward_problem(problem).to(torch.float64)
        inc = out * increment_scale(self.norm, g, out.device)
        return xb + inc.reshape(xb.shape)

    def field(self, problem) -> torch.Tensor:
        """The mapped field (B, *grid_shape), float64 (mapping); with a first guess, the first guess plus the
        predicted correction."""
        out = self.forward_problem(problem).to(torch.float64)[:, 0]
        return _map_base(problem, self.norm) + self.norm.state_std[0] * out

    def forcing(self, problem) -> torch.Tensor:
        """The subgrid forcing (B, *state_shape), float64 (closures)."""
        out = self.forward_problem(problem).to(torch.float64)
        return (out * increment_scale(self.norm, self.geometry, out.device)).reshape(problem.states.shape)

    def target(self, problem, truth: torch.Tensor) -> torch.Tensor:
        """The normalised target of a batch: the increment per level, the forcing per level, or the map."""
        g = self.geometry
        if hasattr(problem, "states"):
            return level_view(truth, g) / increment_scale(self.norm, g, truth.device)
        if hasattr(problem, "background"):
            xb = problem.background.mean(1) if problem.ensemble else problem.background
            return level_view(truth - xb, g) / increment_scale(self.norm, g, truth.device)
        return ((truth - _map_base(problem, self.norm)) / self.norm.state_std[0]).unsqueeze(1)

    # -- training -------------------------------------------------------------------------------------
    def objective(self, problem, pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        """MSE of the normalised target; for an analysis with ``field_loss`` > 0 and an observed field that is
        a spectral map of the state (SSH from PV), plus that weight times the field's MSE relative to the
        field of the true increment in the batch (both terms are 1 for a zero increment): the state loss
        weights the small scales of PV, the field those of the score."""
        target = self.target(problem, truth).to(pred.dtype)
        err = pred - target
        loss = torch.mean(err ** 2)
        fmap = getattr(getattr(problem, "H", None), "field", None)
        if self.field_loss > 0 and hasattr(problem, "background") and getattr(fmap, "transfer", None) is not None:
            scale = increment_scale(self.norm, self.geometry, err.device).to(err.dtype)
            ref = torch.mean(fmap(target * scale) ** 2).clamp_min(torch.finfo(err.dtype).tiny)
            loss = loss + self.field_loss * torch.mean(fmap(err * scale) ** 2) / ref
        return loss

    def _loss(self, idx, train: bool):
        problem, truth = self.trainer.datamodule.batch(idx, self.device, train=train)
        return self.objective(problem, self.forward_problem(problem), truth), problem.B

    def training_step(self, idx, _):
        loss, n = self._loss(idx, True)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def validation_step(self, idx, _):
        loss, n = self._loss(idx, False)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.max_epochs))
        return {"optimizer": opt, "lr_scheduler": sched}


def _map_base(problem, norm):
    """What a mapping network's output corrects: the problem's first guess, else the training mean."""
    fg = getattr(problem, "first_guess", None)
    return norm.state_mean[0] if fg is None else fg
