"""``cnn``: a fully convolutional closure trained offline (Ross et al. 2023's FCNN), with Lightning.

The network (``baselines.learned.nets.FCNN``: circular convolutions, 1-D on a
ring, 2-D on periodic grids) maps the coarse state, normalised per level with
train-split statistics, to the subgrid forcing S per level (in units of its
train-split std), trained by mean squared error on the (state, S) pairs of the
train split with early stopping on val (``baselines.learned``). Offline
training never runs the coarse model, so nothing keeps the closure stable
online: the challenge's online scores show whether it is.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from .base import Supports
from .core.closure import ClosureMethod
from .learned.train import LearnedConfig

torch = lazy.load("torch")


@dataclass
class CNNConfig(LearnedConfig):
    widths: tuple = (64, 64, 32, 32, 32, 32, 32)
    kernel: int = 5
    batch_size: int = 32
    from_checkpoint: str | None = None


class CNN(ClosureMethod):
    name = "cnn"
    summary = "fully convolutional closure S(q) (circular padding), trained offline on (state, S) pairs"
    supports = Supports(families=("closure",), observes=("none",))
    Config = CNNConfig
    reference = "Ross et al. (2023, JAMES); Zanna & Bolton (2020); Guillaumin & Zanna (2021)"

    def _make(self, geometry, cls=None):
        from .learned.learners import CNNLearner
        from .learned.nets import FCNN

        cfg = self.config
        cls = cls or CNNLearner

        def make(norm):
            net = FCNN(geometry.n_levels, geometry.n_levels, geometry.ndim, tuple(int(w) for w in cfg.widths),
                       int(cfg.kernel))
            return cls(net, norm, geometry, lr=cfg.lr, weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs)

        return make

    def fit(self, train, val) -> None:
        from .learned import fit_learned

        self.geometry = train.geometry
        self.learner, self.record = fit_learned(self, train, val, self._make(train.geometry), __file__)

    def forcing(self, x, model):
        from challenges.problems import ClosureProblem

        p = ClosureProblem(states=x, geometry=self.geometry, model=model, var="S", batch_dims=("b",),
                           batch_shape=(x.shape[0],))
        return self.learner.forcing(p)

    def describe(self) -> dict:
        return {"training": self.record}
