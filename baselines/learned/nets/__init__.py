"""Network building blocks for the learned DA baselines: a periodic U-Net and an encoder-processor-decoder GNN."""
from __future__ import annotations

from .fcnn import FCNN
from .gnn import EncodeProcessDecode, GraphBatch, InteractionLayer, build_batch, mlp
from .graphs import (
    edge_features,
    grid_positions,
    mesh_edges,
    periodic_displacement,
    periodic_knn,
    periodic_position_features,
    periodic_radius,
    stencil_offsets,
    wrap_positions,
)
from .unet import ResidualBlock, SinusoidalEmbedding, UNet
from .utils import count_parameters

__all__ = [
    "EncodeProcessDecode", "FCNN", "GraphBatch", "InteractionLayer", "ResidualBlock", "SinusoidalEmbedding", "UNet",
    "build_batch", "count_parameters", "edge_features", "grid_positions", "mesh_edges", "mlp",
    "periodic_displacement", "periodic_knn", "periodic_position_features", "periodic_radius", "stencil_offsets",
    "wrap_positions",
]
