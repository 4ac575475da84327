"""Online (a posteriori) training of a closure: the loss is on the coarse model's trajectory (Frezat et al. 2022).

``OnlineClosureLearner``: from a true state, the differentiable coarse model
runs ``L`` snapshots with the network as its closure
(``model.step_closed``, one snapshot per gradient-checkpointed segment, so
memory grows with L only through the stored segment inputs), and the loss is
the error of the normalised states against the true trajectory at every
snapshot, in ``loss_norm`` (``baselines.learned.norms``: "l2", the mean
square; "h-1", so that the large scales, which carry the energy and drift over
long runs, dominate), plus ``offline_weight`` times the offline loss (the
normalised forcing's error at the start states, in the learner's
``forcing_norm``; 0 by default: a posteriori only). The unroll length grows during training: L = min(L_max,
L_0 + epoch // grow_every). Validation unrolls L_max snapshots without
gradients. ``TrajectoryDataModule`` batches start indices (trajectory,
snapshot) of the true trajectories of the train and val splits.
"""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader

from .closure import ClosureLearner
from .data import _collate, _Indices
from .features import level_view
from .norms import mean_square


class TrajectoryDataModule(pl.LightningDataModule):
    def __init__(self, train, val, unroll_max: int, batch_size: int = 8, seed: int = 0, max_starts: int | None = None,
                 with_forcing: bool = False):
        super().__init__()
        self.train_traj, self.val_traj = train.trajectories(), val.trajectories()
        #: the true subgrid forcing at every state of the trajectories (for an offline term in the loss)
        self.train_S = train.forcings().reshape(self.train_traj.shape) if with_forcing else None
        self.val_S = val.forcings().reshape(self.val_traj.shape) if with_forcing else None
        self.model, self.steps = train.model, int(train.steps_per_snapshot)
        self.unroll_max, self.batch_size, self.seed = int(unroll_max), int(batch_size), int(seed)
        self.train_starts = self._starts(self.train_traj, max_starts, seed)
        self.val_starts = self._starts(self.val_traj, max_starts, seed + 1)
        self.normaliser = None  # the learner keeps the offline phase's normaliser

    def _starts(self, traj, max_starts, seed):
        T = traj.shape[1]
        if T - self.unroll_max - 1 < 1:
            from ..base import SettingError

            raise SettingError(f"unroll_max ({self.unroll_max} snapshots) must be at most {T - 2}: the trajectories "
                               f"hold {T} snapshots")
        s = np.array([(i, t) for i in range(traj.shape[0]) for t in range(0, T - self.unroll_max - 1)])
        if max_starts is not None and len(s) > max_starts:
            s = s[np.sort(np.random.default_rng(seed).choice(len(s), max_starts, replace=False))]
        return s

    def describe(self) -> dict:
        return {"train_starts": len(self.train_starts), "val_starts": len(self.val_starts),
                "unroll_max_snapshots": self.unroll_max, "steps_per_snapshot": self.steps}

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(_Indices(len(self.train_starts)), batch_size=self.batch_size, shuffle=True, generator=g,
                          collate_fn=_collate)

    def val_dataloader(self):
        return DataLoader(_Indices(len(self.val_starts)), batch_size=self.batch_size, collate_fn=_collate)

    def batch(self, idx, device, train: bool, L: int):
        """(x0, the true next L snapshots, the true forcing at x0 or None)."""
        traj, starts = (self.train_traj, self.train_starts) if train else (self.val_traj, self.val_starts)
        S = self.train_S if train else self.val_S
        s = starts[idx.cpu().numpy()]
        x0 = torch.as_tensor(traj[s[:, 0], s[:, 1]], device=device)
        truth = torch.as_tensor(np.stack([traj[s[:, 0], s[:, 1] + d] for d in range(1, L + 1)], 1), device=device)
        S0 = None if S is None else torch.as_tensor(S[s[:, 0], s[:, 1]], device=device)
        return x0, truth, S0


class OnlineClosureLearner(ClosureLearner):
    unroll_start: int = 1
    grow_every: int = 3
    #: weight of the offline term (the normalised forcing's error at the start states); 0: a posteriori only
    offline_weight: float = 0.0
    #: the norm of the states' error ("l2" or "h-1", ``baselines.learned.norms``)
    loss_norm: str = "l2"

    def unroll(self, train: bool) -> int:
        dm = self.trainer.datamodule
        if not train:
            return dm.unroll_max
        return int(min(dm.unroll_max, self.unroll_start + self.current_epoch // max(1, self.grow_every)))

    @staticmethod
    def _problem(x, geometry, model):
        """The closure problem of a batch of states x (B, *state_shape)."""
        from challenges.problems import ClosureProblem

        return ClosureProblem(states=x, geometry=geometry, model=model, var="S", batch_dims=("b",),
                              batch_shape=(x.shape[0],))

    def _closure(self, geometry, model):
        return lambda x: self.forcing(self._problem(x, geometry, model))

    def _loss(self, idx, train: bool):
        dm = self.trainer.datamodule
        L = self.unroll(train)
        x, truth, S0 = dm.batch(idx, self.device, train, L)
        g, model = self.geometry, dm.model
        offline = 0.0
        if self.offline_weight > 0 and S0 is not None:
            p = self._problem(x, g, model)
            pred = self.forward_problem(p)
            offline = self.objective(p, pred, S0)
            self.log("offline_loss", offline, on_step=False, on_epoch=True, batch_size=x.shape[0])
        closure = self._closure(g, model)
        m, s, _ = self.norm.tensors(x.device, g.n_levels)
        shape = (1, -1, *[1] * g.ndim)

        def segment(z):
            return model.step_closed(z, dm.steps, closure)

        loss = 0.0
        for d in range(L):
            x = checkpoint(segment, x, use_reentrant=False) if (train and torch.is_grad_enabled()) else segment(x)
            err = (level_view(x - truth[:, d], g)) / s.reshape(shape)
            loss = loss + mean_square(err, self.loss_norm, g.ndim)
        self.log("unroll_snapshots", float(L), on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss / L + self.offline_weight * offline, x.shape[0]

