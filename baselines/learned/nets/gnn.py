"""An encoder-processor-decoder graph network from scattered observations to a periodic grid.

Encoder: MLPs embed observation nodes, grid nodes and both kinds of edges into
``hidden`` features; one interaction layer passes messages from observation
nodes to grid nodes along obs -> grid edges. Processor: ``processor_layers``
interaction layers on the multi-scale grid <-> grid mesh. Decoder: an MLP from
each grid node's embedding to ``out_features``, whose last layer starts at zero
(the untrained network predicts a zero increment).

Two layer types (``layer``): ``"interaction"`` (GraphCast-style: edges carry
their own hidden state, updated by an MLP on every edge in every layer) and
``"factored"``, whose message is a one-hidden-layer MLP of (source, destination,
raw edge attributes) with its output layer applied after the sum, where it
commutes with the aggregation: m_i = W Σ_j σ(A h_j + B h_i + C e_ij) + b. Per
edge it costs gathers, adds and one activation instead of two matrix products
on 3 × hidden features, which is what makes training on a 64 × 64 grid
affordable on a CPU (``benchmarks/README_learned.md``).

Nothing in the network depends on the number of nodes, so the same weights run
on any grid: only the graph (``build_batch``) changes. A batch is the disjoint
union of its samples' graphs (node indices offset per sample, as
``torch_geometric.data.Batch`` does), so samples may have different numbers of
observations.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from .graphs import (
    edge_features,
    grid_positions,
    mesh_edges,
    periodic_knn,
    periodic_position_features,
    periodic_radius,
)


def mlp(in_features: int, out_features: int, hidden: int, layers: int = 2, layer_norm: bool = True) -> nn.Sequential:
    """``layers`` Linear layers (SiLU between them), optionally followed by a LayerNorm of the output."""
    if layers < 1:
        raise ValueError(f"an MLP needs at least one layer, got {layers}.")
    sizes = [in_features] + [hidden] * (layers - 1) + [out_features]
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < layers - 1:
            mods.append(nn.SiLU())
    if layer_norm:
        mods.append(nn.LayerNorm(out_features))
    return nn.Sequential(*mods)


class InteractionLayer(MessagePassing):
    """One round of message passing with edge and node updates (as in interaction networks / GraphCast).

    e' = e + LN(MLP_e([h_src, h_dst, e])); m_i = aggr_{edges j -> i} e';
    h_i' = h_i + LN(MLP_n([h_i, m_i])). Works on one node set (``x`` a tensor)
    or a bipartite graph (``x = (x_src, x_dst)``; only destinations are updated).
    Returns the updated destination nodes and edges.
    """

    def __init__(self, hidden: int, mlp_layers: int = 2, aggr: str = "sum"):
        if aggr not in ("sum", "mean"):
            raise ValueError(f"aggr must be 'sum' or 'mean', got {aggr!r}.")
        super().__init__(aggr=aggr)
        self.edge_mlp = mlp(3 * hidden, hidden, hidden, mlp_layers)
        self.node_mlp = mlp(2 * hidden, hidden, hidden, mlp_layers)

    def forward(self, x, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_src, x_dst = x if isinstance(x, (tuple, list)) else (x, x)
        size = (x_src.shape[0], x_dst.shape[0])
        edge_attr = self.edge_updater(edge_index, x=(x_src, x_dst), edge_attr=edge_attr, size=size)
        x_dst = self.propagate(edge_index, x=(x_src, x_dst), edge_attr=edge_attr, size=size)
        return x_dst, edge_attr

    def edge_update(self, x_j: torch.Tensor, x_i: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return edge_attr + self.edge_mlp(torch.cat([x_j, x_i, edge_attr], dim=-1))

    def message(self, edge_attr: torch.Tensor) -> torch.Tensor:
        return edge_attr

    def update(self, aggr_out: torch.Tensor, x) -> torch.Tensor:
        h = x[1]
        return h + self.node_mlp(torch.cat([h, aggr_out], dim=-1))


class FactoredInteractionLayer(MessagePassing):
    """Message passing whose message MLP's output layer is applied after the aggregation.

    m_i = W aggr_{edges j -> i} σ(A h_src_j + B h_dst_i + C e_ij) + b (raw edge attributes
    e_ij: displacement and distance); h_i' = h_i + LN(MLP_n([h_i, m_i])). Equal to a
    message MLP with one hidden layer and sum (or mean) aggregation, but the per-edge work
    is elementwise. Works on one node set or a bipartite graph (``x = (x_src, x_dst)``).
    Returns the updated destination nodes and the edge attributes unchanged.
    """

    def __init__(self, hidden: int, edge_features: int, mlp_layers: int = 2, aggr: str = "sum"):
        if aggr not in ("sum", "mean"):
            raise ValueError(f"aggr must be 'sum' or 'mean', got {aggr!r}.")
        super().__init__(aggr=aggr)
        self.src = nn.Linear(hidden, hidden, bias=False)
        self.dst = nn.Linear(hidden, hidden)
        self.edge = nn.Linear(edge_features, hidden, bias=False)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.LayerNorm(hidden))
        self.node_mlp = mlp(2 * hidden, hidden, hidden, mlp_layers)

    def forward(self, x, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_src, x_dst = x if isinstance(x, (tuple, list)) else (x, x)
        size = (x_src.shape[0], x_dst.shape[0])
        agg = self.propagate(edge_index, a=(self.src(x_src), self.dst(x_dst)), c=self.edge(edge_attr), size=size)
        return x_dst + self.node_mlp(torch.cat([x_dst, self.out(agg)], dim=-1)), edge_attr

    def message(self, a_j: torch.Tensor, a_i: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(a_j + a_i + c)


class EncodeProcessDecode(nn.Module):
    """Observations + background grid -> per-grid-node output (N_grid_total, out_features).

    ``obs_features`` / ``grid_features``: input features per observation node
    (value, sigma, time offset, position features, ...) and per grid node
    (background values per channel, position features, ...). ``edge_features``:
    attributes per edge, the same count for obs -> grid and mesh edges
    (d + 1 from ``graphs.edge_features``: 3 in 2-D, 2 in 1-D). ``mlp_layers``
    counts the Linear layers of every MLP; ``aggr`` is "sum" or "mean"; ``layer`` is
    "interaction" (edge states, encoded and updated) or "factored" (raw edge attributes).
    """

    def __init__(self, obs_features: int, grid_features: int, out_features: int, hidden: int = 64,
                 processor_layers: int = 6, mlp_layers: int = 2, edge_features: int = 3, aggr: str = "sum",
                 layer: str = "interaction"):
        super().__init__()
        if layer not in ("interaction", "factored"):
            raise ValueError(f"layer must be 'interaction' or 'factored', got {layer!r}.")
        self.obs_encoder = mlp(obs_features, hidden, hidden, mlp_layers)
        self.grid_encoder = mlp(grid_features, hidden, hidden, mlp_layers)
        if layer == "interaction":
            self.obs_edge_encoder = mlp(edge_features, hidden, hidden, mlp_layers)
            self.mesh_edge_encoder = mlp(edge_features, hidden, hidden, mlp_layers)

            def make():
                return InteractionLayer(hidden, mlp_layers, aggr)
        else:
            self.obs_edge_encoder = self.mesh_edge_encoder = nn.Identity()

            def make():
                return FactoredInteractionLayer(hidden, edge_features, mlp_layers, aggr)
        self.obs_to_grid = make()
        self.processor = nn.ModuleList([make() for _ in range(processor_layers)])
        self.decoder = mlp(hidden, out_features, hidden, mlp_layers, layer_norm=False)
        last = self.decoder[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, obs_x: torch.Tensor, grid_x: torch.Tensor, obs_to_grid_edge_index: torch.Tensor,
                obs_to_grid_edge_attr: torch.Tensor, mesh_edge_index: torch.Tensor,
                mesh_edge_attr: torch.Tensor) -> torch.Tensor:
        h_obs = self.obs_encoder(obs_x)
        h = self.grid_encoder(grid_x)
        h, _ = self.obs_to_grid((h_obs, h), obs_to_grid_edge_index, self.obs_edge_encoder(obs_to_grid_edge_attr))
        e = self.mesh_edge_encoder(mesh_edge_attr)
        for layer in self.processor:
            h, e = layer(h, mesh_edge_index, e)
        return self.decoder(h)


@dataclass
class GraphBatch:
    """Disjoint-union graph tensors of B samples on one grid (grid nodes of sample b: b*N .. (b+1)*N - 1)."""

    obs_x: torch.Tensor                     # (M_total, F_obs)
    grid_x: torch.Tensor                    # (B * N, F_grid)
    obs_to_grid_edge_index: torch.Tensor    # (2, E_og): row 0 observation node, row 1 grid node
    obs_to_grid_edge_attr: torch.Tensor     # (E_og, d + 1)
    mesh_edge_index: torch.Tensor           # (2, B * E_mesh)
    mesh_edge_attr: torch.Tensor            # (B * E_mesh, d + 1)
    obs_ptr: torch.Tensor                   # (B + 1,): observations of sample b are obs_ptr[b] .. obs_ptr[b+1] - 1
    batch_size: int
    grid_shape: tuple[int, ...]

    @property
    def num_grid(self) -> int:
        return math.prod(self.grid_shape)

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The tensors ``EncodeProcessDecode.forward`` takes, in its order."""
        return (self.obs_x, self.grid_x, self.obs_to_grid_edge_index, self.obs_to_grid_edge_attr,
                self.mesh_edge_index, self.mesh_edge_attr)

    def unbatch(self, out: torch.Tensor) -> torch.Tensor:
        """Per-grid-node output (B * N, F) -> (B, N, F)."""
        return out.reshape(self.batch_size, self.num_grid, -1)

    def to(self, device) -> GraphBatch:
        return GraphBatch(**{f.name: (v.to(device) if isinstance(v := getattr(self, f.name), torch.Tensor) else v)
                             for f in fields(self)})


def build_batch(obs_pos_list: Sequence, obs_feat_list: Sequence, grid_feat: torch.Tensor, grid_shape: Sequence[int],
                box, k: int = 4, radius: float | None = None, mesh_neighbours: int = 8, mesh_levels: int = 2,
                position_features: bool = True, edge_scale: float | None = None) -> GraphBatch:
    """Build the disjoint-union graph of B samples (their observation counts may differ).

    ``obs_pos_list[b]`` (M_b, d) and ``obs_feat_list[b]`` (M_b, F_obs) are sample
    b's observation positions and features; ``grid_feat`` (B, N, F_grid) the
    grid node features in C order of ``grid_shape`` (N = prod(grid_shape)).
    Obs -> grid edges: every grid node receives its ``min(k, M_b)`` nearest
    observations, or, with ``radius``, every observation within ``radius`` (at
    most ``k`` nearest). Mesh edges: ``graphs.mesh_edges``. Edge attributes:
    ``graphs.edge_features`` with ``scale = edge_scale`` (default: the smallest
    grid spacing; pass a fixed physical length to keep obs -> grid attributes
    resolution independent when one model serves several grid sizes).
    With ``position_features``, sin/cos of the periodic position (2 d columns)
    are appended to the observation and grid features, so the network's
    ``obs_features`` is F_obs + 2 d and ``grid_features`` is F_grid + 2 d.
    """
    grid_shape = tuple(int(n) for n in grid_shape)
    n_grid, d = math.prod(grid_shape), len(grid_shape)
    batch = grid_feat.shape[0]
    if grid_feat.ndim != 3 or grid_feat.shape[1] != n_grid:
        raise ValueError(f"grid_feat must be (B, {n_grid}, F) for grid {grid_shape}, got {tuple(grid_feat.shape)}.")
    if len(obs_pos_list) != batch or len(obs_feat_list) != batch:
        raise ValueError(f"need {batch} observation position and feature sets, got "
                         f"{len(obs_pos_list)} and {len(obs_feat_list)}.")
    box_t = torch.broadcast_to(torch.as_tensor(box, dtype=torch.float64), (d,))
    scale = edge_scale if edge_scale is not None else float(min(L / n for L, n in zip(box_t.tolist(), grid_shape)))
    dtype, device = grid_feat.dtype, grid_feat.device

    gpos = grid_positions(grid_shape, box_t)
    mesh = mesh_edges(grid_shape, box_t, mesh_neighbours, mesh_levels)
    mesh_attr = edge_features(gpos, gpos, mesh, box_t, scale)
    grid_x = grid_feat
    if position_features:
        pf = periodic_position_features(gpos, box_t).to(dtype=dtype, device=device)
        grid_x = torch.cat([grid_feat, pf.expand(batch, -1, -1)], dim=-1)

    obs_x, og_index, og_attr, counts = [], [], [], []
    offset = 0
    for b, (pos, feat) in enumerate(zip(obs_pos_list, obs_feat_list)):
        pos = torch.as_tensor(pos, dtype=torch.float64).reshape(-1, d)
        feat = torch.as_tensor(feat).to(dtype=dtype, device=device)
        m = pos.shape[0]
        if feat.shape[0] != m:
            raise ValueError(f"sample {b}: {m} observation positions but {feat.shape[0]} feature rows.")
        if m == 0:
            ei = torch.zeros(2, 0, dtype=torch.long)
        elif radius is None:
            ei = periodic_knn(pos, gpos, min(k, m), box_t)
        else:
            ei = periodic_radius(pos, gpos, radius, box_t, max_neighbors=k)
        og_attr.append(edge_features(pos, gpos, ei, box_t, scale))
        og_index.append(ei + torch.tensor([[offset], [b * n_grid]]))
        if position_features:
            feat = torch.cat([feat, periodic_position_features(pos, box_t).to(dtype=dtype, device=device)], dim=-1)
        obs_x.append(feat)
        counts.append(m)
        offset += m

    n_mesh = mesh.shape[1]
    shifts = (torch.arange(batch) * n_grid).repeat_interleave(n_mesh)
    return GraphBatch(
        obs_x=torch.cat(obs_x),
        grid_x=grid_x.reshape(batch * n_grid, -1),
        obs_to_grid_edge_index=torch.cat(og_index, dim=1).to(device),
        obs_to_grid_edge_attr=torch.cat(og_attr).to(dtype=dtype, device=device),
        mesh_edge_index=(mesh.repeat(1, batch) + shifts).to(device),
        mesh_edge_attr=mesh_attr.repeat(batch, 1).to(dtype=dtype, device=device),
        obs_ptr=torch.tensor([0] + counts).cumsum(0),
        batch_size=batch,
        grid_shape=grid_shape,
    )
