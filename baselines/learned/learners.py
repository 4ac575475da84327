"""How each network reads a problem: the ``Learner`` subclasses of ``ae`` (U-Net) and ``gnn`` (graph network).

Module-level classes, so that Lightning's spawned DDP processes can pickle them.
"""
from __future__ import annotations

import torch

from .features import (
    grid_channels,
    grid_features,
    obs_features,
    state_channels,
    window_channels,
    window_obs_features,
)
from .module import Learner
from .nets import build_batch


class UNetLearner(Learner):
    """Gridded channels (``features.grid_channels`` / ``window_channels``) through a U-Net."""

    def forward_problem(self, problem):
        x = grid_channels(problem, self.norm) if hasattr(problem, "background") else window_channels(problem, self.norm)
        return self.net(x.to(torch.float32))


class CNNLearner(Learner):
    """Normalised coarse states through a fully convolutional network: the closures' CNN."""

    def forward_problem(self, problem):
        return self.net(state_channels(problem.states, problem.geometry, self.norm).to(torch.float32))


class GraphLearner(Learner):
    """Observation and grid nodes (``features.obs_features`` / ``grid_features``) through a graph network.

    ``hp``: ``k`` (observations per grid node), ``mesh_levels``, ``edge_scale`` (saved with the weights).
    """

    hp: dict = {}

    def forward_problem(self, problem):
        g = problem.geometry
        if hasattr(problem, "states"):  # a closure: the grid graph alone, nodes carry the normalised state
            x = state_channels(problem.states, g, self.norm)
            grid = x.reshape(problem.B, g.n_levels, -1).transpose(1, 2)
            empty = [torch.zeros(0, g.ndim, dtype=torch.float64)] * problem.B
            feats = [torch.zeros(0, 3, dtype=torch.float32)] * problem.B
            batch = build_batch(empty, feats, grid.to(torch.float32), g.shape, g.length, k=1,
                                mesh_neighbours=8 if g.ndim == 2 else 2, mesh_levels=self.hp["mesh_levels"],
                                edge_scale=self.hp["edge_scale"]).to(self.device)
            out = batch.unbatch(self.net(*batch.inputs()))
            return out.transpose(1, 2).reshape(problem.B, -1, *g.shape)
        err = problem.obs.error_var(self.obs_error)
        analysis = hasattr(problem, "background")
        obs = (obs_features if analysis else window_obs_features)(problem, self.norm, err)
        spacing = torch.as_tensor(g.spacing, dtype=torch.float64, device=problem.device)
        pos = [(p * spacing).cpu() for p, _ in obs]
        feats = [f.to(torch.float32) for _, f in obs]
        grid = (grid_features(problem, self.norm) if analysis
                else torch.zeros(problem.B, g.n_points, 1, dtype=torch.float64, device=problem.device))
        batch = build_batch(pos, feats, grid.to(torch.float32), g.shape, g.length, k=self.hp["k"],
                            mesh_neighbours=8 if g.ndim == 2 else 2, mesh_levels=self.hp["mesh_levels"],
                            edge_scale=self.hp["edge_scale"]).to(self.device)
        out = batch.unbatch(self.net(*batch.inputs()))           # (B, N, C)
        return out.transpose(1, 2).reshape(problem.B, -1, *g.shape)


__all__ = ["CNNLearner", "DiffusionLearner", "GraphLearner", "UNetLearner"]


class DiffusionLearner(Learner):
    """A conditional denoiser of the normalised analysis increment (or, for mapping, an unconditional
    prior of normalised maps): ``net(cat(x_t, cond), t)`` with ``cond`` the normalised background per
    level (none for mapping). Trained with ``baselines.diffusion``'s loss on (increment, background)
    pairs of the train split."""

    parts = None  # ``baselines.diffusion.DiffusionParts``, set by the method

    def condition(self, problem):
        from .features import level_view

        if not hasattr(problem, "background"):
            return None
        g = problem.geometry
        xb = problem.background.mean(1) if problem.ensemble else problem.background
        m, s, _ = self.norm.tensors(xb.device, g.n_levels)
        shape = (1, -1, *[1] * g.ndim)
        return ((level_view(xb, g) - m.reshape(shape)) / s.reshape(shape)).to(torch.float32)

    def model(self, x, t):
        return self.net(x.to(torch.float32), t.to(torch.float32))

    def _loss(self, idx, train: bool):
        problem, truth = self.trainer.datamodule.batch(idx, self.device, train=train)
        x0 = self.target(problem, truth).to(torch.float32)
        g = torch.Generator(device="cpu").manual_seed(int(self.global_step) * 2 + (0 if train else 10 ** 9 + int(idx[0])))
        loss = self.parts.loss(self.model, x0, self.condition(problem), generator=g, stratified=not train)
        return loss, problem.B
