"""``gnn``: an encoder-processor-decoder graph network in torch-geometric, trained with Lightning.

The graph (``baselines.learned.nets.build_batch``, rebuilt for every problem):

* observation nodes: normalised value, innovation y - H(xb) (analysis) or time
  offset within the window (mapping), total error std, and sin/cos of the
  periodic position;
* grid nodes: the normalised background per level (analysis; mapping: none)
  and sin/cos of the position;
* obs -> grid edges: every grid node receives its ``k`` nearest observations in
  periodic distance (``scipy.spatial.cKDTree`` with ``boxsize``: exact on the
  periodic domain); grid <-> grid mesh edges: the 8-neighbour stencil (2 on a
  ring) at 1, 2, ... cells (``mesh_levels`` scales); edge attributes: the
  minimum-image displacement and distance, in units of ``edge_scale`` (the
  training grid's spacing, stored with the model, so the same weights run on
  another grid size: only the graph changes);
* network (``EncodeProcessDecode``): MLP encoders, one message-passing layer
  obs -> grid, ``processor_layers`` layers on the mesh (residual node updates,
  LayerNorm), an MLP decoder per grid node: the analysis increment per level
  (analysis) or the map (mapping). ``layer="factored"`` (default): each message
  is σ(A h_src + B h_dst + C e) of the raw edge attributes e, summed, then one
  linear layer, so the per-edge work is elementwise; ``layer="interaction"``:
  GraphCast-style edge states updated by an MLP on every edge (about 4x slower
  per batch at QG small, see ``benchmarks/README_learned.md``).

Training and data as ``ae`` (``baselines.learned``): training pairs of the
train split, early stopping on val, train-split normalisation, a random
density of the sweep per training sample.

Closures: the same network on the grid graph alone (no observation nodes):
grid nodes carry the normalised coarse state per level, the decoder gives the
subgrid forcing per level, trained offline on (state, S) pairs; the harness
runs it online as the coarse model's closure.
"""
from __future__ import annotations

from dataclasses import dataclass

import lazy_loader as lazy

from .base import Method, Supports
from .learned.train import LearnedConfig

torch = lazy.load("torch")


@dataclass
class GNNConfig(LearnedConfig):
    hidden: int = 48
    processor_layers: int = 4
    mlp_layers: int = 2
    #: observations each grid node receives
    k: int = 6
    mesh_levels: int = 2
    #: "factored" (messages sum before their output layer: cheap per edge) or "interaction" (edge states)
    layer: str = "factored"
    #: edge attribute unit; None: the training grid's spacing (in the geometry's units)
    edge_scale: float | None = None
    half_window: float = 5.0
    #: analysis: weight of the observed field's (SSH's) MSE added to the loss on the increment (0: none). 1 by
    #: default: on the PV loss alone the qg-da GNN was below the background on SSH (leaderboard/qg-da.md)
    field_loss: float = 1.0
    from_checkpoint: str | None = None


class GNN(Method):
    name = "gnn"
    summary = "encoder-processor-decoder GNN (torch-geometric): obs nodes -> multi-scale grid mesh, trained with Lightning"
    supports = Supports(families=("analysis", "cycling", "forecast", "mapping", "closure"),
                        observes=("state", "points", "none"))
    Config = GNNConfig
    reference = "Battaglia et al. (2018); Pfaff et al. (2021); Keisler (2022); Lam et al. (2023, GraphCast)"

    def _make(self, geometry, mapping: bool):
        from .learned.learners import GraphLearner
        from .learned.nets import EncodeProcessDecode

        cfg = self.config
        d = geometry.ndim
        n_obs = 3 + 2 * d
        n_grid = (1 if mapping else geometry.n_levels) + 2 * d
        n_out = 1 if mapping else geometry.n_levels
        hp = {"k": cfg.k, "mesh_levels": cfg.mesh_levels,
              "edge_scale": cfg.edge_scale if cfg.edge_scale is not None else float(min(geometry.spacing))}
        def make(norm):
            net = EncodeProcessDecode(n_obs, n_grid, n_out, hidden=cfg.hidden, processor_layers=cfg.processor_layers,
                                      mlp_layers=cfg.mlp_layers, edge_features=d + 1, layer=cfg.layer)
            learner = GraphLearner(net, norm, geometry, lr=cfg.lr, weight_decay=cfg.weight_decay, max_epochs=cfg.max_epochs,
                          obs_error=cfg.obs_error, field_loss=cfg.field_loss)
            learner.hp = dict(norm.extra.get("graph") or hp)
            norm.extra["graph"] = learner.hp
            return learner

        return make

    def fit(self, train, val) -> None:
        from .learned import fit_learned

        self.mapping = train.family == "mapping"
        self.learner, self.record = fit_learned(self, train, val, self._make(train.geometry, self.mapping), __file__)

    def predict(self, problem):
        from .learned import predict_learned

        if problem.geometry != self.learner.geometry:
            self.learner.geometry = problem.geometry  # another grid: the graph is rebuilt, the weights stay
        if hasattr(problem, "states"):
            with torch.no_grad():
                return problem.result(self.learner.forcing(problem))
        return predict_learned(self, problem)

    def closure(self, model):
        """The closure x -> S for the online harness (closure challenges)."""
        from challenges.problems import ClosureProblem

        g = self.learner.geometry

        def forcing(x):
            return self.learner.forcing(ClosureProblem(states=x, geometry=g, model=model, var="S",
                                                       batch_dims=("b",), batch_shape=(x.shape[0],)))

        return forcing

    def describe(self) -> dict:
        return {"training": self.record, "graph": self.learner.hp}
