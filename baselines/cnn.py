"""``cnn``: a fully convolutional closure trained offline (Ross et al. 2023's FCNN), with Lightning.

The network (``baselines.learned.nets.FCNN``: circular convolutions, 1-D on a
ring, 2-D on periodic grids) maps the coarse state, normalised per level with
train-split statistics, to the subgrid forcing S per level (in units of its
train-split std), trained on the (state, S) pairs of the train split with
early stopping on val (``baselines.learned``), by the forcing's mean squared
error (``forcing_norm`` "l2", Ross et al.) or its H^-1 norm ("h-1",
``baselines.learned.norms``: large scales weigh more). Offline
training never runs the coarse model, so nothing keeps the closure stable
online: the challenge's online scores show whether it is.

Kernel size: by default (``kernel`` unset) the largest odd kernel whose
receptive field, ``(len(widths) + 1) * (kernel - 1) + 1`` cells, spans at most half
the grid plus one cell, and at least 3: Ross et al.'s 5x5 FCNN (33 cells) on
their 64² grid, 3x3 (17 cells, the same ~520 km) on a 32² grid. With 5x5 on a
32² grid the network sees the whole periodic domain; measured on qg-closure
small, it learned a domain-wide bias of S (whose true domain mean is zero)
and scored an eddy similarity of -48.6 against -5.0 for 3x3, whose online
runs also cost 2.8 times fewer operations (README, docs/challenges.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import lazy_loader as lazy

from .base import Supports
from .core.closure import ClosureMethod
from .learned.train import LearnedConfig

torch = lazy.load("torch")

#: the loss norms (``baselines.learned.norms.NORMS``; here so that settings are checked without importing torch)
NORMS = ("l2", "h-1")


@dataclass
class CNNConfig(LearnedConfig):
    widths: tuple = (64, 64, 32, 32, 32, 32, 32)
    #: None: chosen from the grid (module doc); the resolved value is what the results record
    kernel: int | None = None
    batch_size: int = 32
    from_checkpoint: str | None = None
    #: the norm of the forcing's error in the offline loss: "l2" or "h-1" (module doc)
    forcing_norm: str = "l2"

    def __post_init__(self):
        super().__post_init__()
        from .base import SettingError

        check_norm("forcing_norm", self.forcing_norm)
        if self.kernel is not None and (self.kernel < 1 or self.kernel % 2 == 0):
            raise SettingError(f"kernel must be an odd number of cells (3, 5, ...) so that the output keeps the "
                               f"grid's shape, got {self.kernel}")


class CNN(ClosureMethod):
    name = "cnn"
    summary = "fully convolutional closure S(q) (circular padding), trained offline on (state, S) pairs"
    supports = Supports(families=("closure",), observes=("none",))
    Config = CNNConfig
    reference = "Ross et al. (2023, JAMES); Zanna & Bolton (2020); Guillaumin & Zanna (2021)"

    def _make(self, geometry, cls=None):
        from .learned.closure import ClosureLearner
        from .learned.nets import FCNN

        cfg = self.config
        cls = cls or ClosureLearner

        def make(norm):
            net = FCNN(geometry.n_levels, geometry.n_levels, geometry.ndim, tuple(int(w) for w in cfg.widths),
                       int(cfg.kernel))
            learner = cls(net, norm, geometry, lr=cfg.lr, weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs)
            learner.forcing_norm = cfg.forcing_norm
            return learner

        return make

    @staticmethod
    def learner_files() -> list:
        """The source files of the closures' learner, beside the learned stack's own (checkpoint keys)."""
        from .learned import closure, norms

        return [closure.__file__, norms.__file__]

    def resolve_kernel(self, geometry) -> None:
        """Set an unset ``kernel`` from the grid (module doc), before the checkpoint key is made."""
        if self.config.kernel is None:
            self.config = dataclasses.replace(self.config, kernel=default_kernel(geometry.shape, len(self.config.widths)))

    def fit(self, train, val) -> None:
        from .learned import fit_learned

        self.geometry = train.geometry
        self.resolve_kernel(train.geometry)
        self.learner, self.record = fit_learned(self, train, val, self._make(train.geometry),
                                                [__file__, *self.learner_files()])

    def forcing(self, x, model):
        from challenges.problems import ClosureProblem

        p = ClosureProblem(states=x, geometry=self.geometry, model=model, var="S", batch_dims=("b",),
                           batch_shape=(x.shape[0],))
        return self.learner.forcing(p)

    def describe(self) -> dict:
        return {"training": self.record}


def check_norm(setting: str, value: str) -> None:
    """Refuse a loss norm that is not one of ``NORMS``, in one sentence naming the setting."""
    if value not in NORMS:
        from .base import SettingError

        raise SettingError(f"{setting} must be one of {', '.join(NORMS)}, got {value!r}")


def default_kernel(shape, n_hidden: int) -> int:
    """The largest odd kernel (at least 3) whose receptive field through ``n_hidden`` + 1 convolutions,
    ``(n_hidden + 1) * (kernel - 1) + 1`` cells, is at most half the smallest grid axis plus one cell."""
    reach = (min(shape) // 2) // (n_hidden + 1)  # the most (kernel - 1) allowed
    return max(3, 2 * (reach // 2) + 1)
