"""``ae``: a convolutional encoder-decoder (U-Net) for data assimilation and mapping, trained with Lightning.

The network (``baselines.learned.nets.UNet``, circular padding, 1-D on a ring
and 2-D on doubly periodic grids, skip connections, GroupNorm) sees the
problem on its grid (``baselines.learned.features``):

* analysis, cycling and forecast problems: the background per level and, per
  grid cell, the mean observed value, the mean innovation y - H(xb), the
  observation mask and log(1 + count); it predicts the analysis increment per
  level (in units of the training increment std), added to the background;
* mapping problems: per daily time bin within +-``half_window`` days of the
  map's day, the mean observed value and log(1 + count) per cell; it predicts
  the map (in units of the training field std about its mean).

Training (``baselines.learned.train``): the challenge's training pairs of the
train split, validation on the val split's pairs (early stopping and the
checkpoint kept); normalisation statistics from the train split only. Where
the challenge has a density sweep, each training sample keeps a random density
of the sweep, so one model serves every density. A cycling model learns from
the challenge's cycling training pairs (see the challenge's docstring: their
backgrounds mimic a cycled background, not one-step DA's). A forecast model
learns the analysis; the harness forecasts it.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from .base import Method, Supports
from .learned.train import LearnedConfig

torch = lazy.load("torch")


@dataclass
class AEConfig(LearnedConfig):
    base_channels: int = 24
    channel_mults: tuple = (1, 2, 4)
    blocks_per_level: int = 2
    #: mapping: observations within this many days of a map's day. 15 by default: on qg-map the
    #: U-Net's µ rose from 0.726 (+-5 days) to 0.795 (+-15; leaderboard/qg-map.md, ae-mirror and ae)
    half_window: float = 15.0
    #: analysis: weight of the observed field's (SSH's) MSE added to the loss on the increment (0: none). 1 by
    #: default: it took the qg-da U-Net past 3D-Var on qg-da-dense (leaderboard/qg-da-dense.md)
    field_loss: float = 1.0
    #: a saved ``model.pt`` to predict with instead of training (e.g. trained at another size)
    from_checkpoint: str | None = None


class AE(Method):
    name = "ae"
    summary = "U-Net (circular padding) on the gridded background and observations, trained with Lightning"
    supports = Supports(families=("analysis", "cycling", "forecast", "mapping"))
    Config = AEConfig
    reference = "Ronneberger et al. (2015); Fablet et al. (2021) for learned SSH mapping"

    #: input channels a subclass adds after the mapping window channels (``ae-oi``: the first guess)
    extra_map_inputs = 0

    def _make(self, geometry, mapping: bool):
        from .learned.learners import UNetLearner
        from .learned.nets import UNet

        cfg = self.config
        if mapping:
            n_in, n_out = 2 * (2 * int(round(cfg.half_window)) + 1) + self.extra_map_inputs, 1
        else:
            n_in, n_out = geometry.n_levels + 4, geometry.n_levels
        def make(norm):
            net = UNet(n_in, n_out, dim=geometry.ndim, base_channels=cfg.base_channels,
                       channel_mults=tuple(int(m) for m in cfg.channel_mults), blocks_per_level=cfg.blocks_per_level)
            return UNetLearner(net, norm, geometry, lr=cfg.lr, weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs,
                       obs_error=cfg.obs_error, field_loss=cfg.field_loss)

        return make

    def fit(self, train, val) -> None:
        from .learned import fit_learned

        self.mapping = train.family == "mapping"
        self.learner, self.record = fit_learned(self, train, val, self._make(train.geometry, self.mapping), __file__)

    def predict(self, problem):
        from .learned import predict_learned

        return predict_learned(self, problem)

    def describe(self) -> dict:
        return {"training": self.record}
