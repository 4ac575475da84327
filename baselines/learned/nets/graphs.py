"""Graph construction on periodic domains (a ring or a doubly periodic box), without torch-cluster.

Positions are (N, d) arrays or tensors (d = 1 or 2; a 1-D array is read as
(N, 1)), with columns in the order of the grid axes (for a 2-D grid of shape
(ny, nx): column 0 is y, column 1 is x). ``box`` is the periodic length, one
number for every axis or one per axis in the same order. Inputs are wrapped
into [0, box) first. Neighbour searches use ``scipy.spatial.cKDTree`` with
``boxsize=box``, which measures minimum-image (periodic) distances exactly.

Every ``edge_index`` is a (2, E) long tensor in torch-geometric's convention:
row 0 holds the source node, row 1 the destination node (messages flow
source -> destination).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree


def _positions(pos) -> np.ndarray:
    p = pos.detach().cpu().numpy() if isinstance(pos, torch.Tensor) else np.asarray(pos)
    p = p.astype(np.float64)
    return p[:, None] if p.ndim == 1 else p


def _box(box, d: int) -> np.ndarray:
    b = np.broadcast_to(np.asarray(box, dtype=np.float64), (d,)).copy()
    if np.any(b <= 0):
        raise ValueError(f"box lengths must be positive, got {b.tolist()}.")
    return b


def wrap_positions(pos, box) -> np.ndarray:
    """Positions (N, d) as float64 numpy, wrapped into [0, box) per axis."""
    p = _positions(pos)
    b = _box(box, p.shape[1])
    p = np.mod(p, b)
    return np.where(p >= b, p - b, p)  # np.mod can round a tiny negative up to exactly box


def _to_edge_index(src: np.ndarray, dst: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([src, dst]).astype(np.int64))


def periodic_knn(src_pos, dst_pos, k: int, box) -> torch.Tensor:
    """Edges src -> dst: every destination node receives its ``k`` nearest source nodes (periodic distance).

    E = k * N_dst; edges are grouped by destination, nearest source first. If a
    source and a destination coincide (same point set), the self pair is one of
    the k edges.
    """
    src, dst = _positions(src_pos), _positions(dst_pos)
    if not 1 <= k <= len(src):
        raise ValueError(f"periodic_knn needs 1 <= k <= number of source nodes ({len(src)}), got k={k}.")
    b = _box(box, src.shape[1])
    tree = cKDTree(wrap_positions(src, b), boxsize=b)
    _, idx = tree.query(wrap_positions(dst, b), k=k)
    idx = np.asarray(idx).reshape(len(dst), k)
    return _to_edge_index(idx.ravel(), np.repeat(np.arange(len(dst)), k))


def periodic_radius(src_pos, dst_pos, r: float, box, max_neighbors: int | None = None) -> torch.Tensor:
    """Edges src -> dst for every pair at periodic distance <= ``r``.

    With ``max_neighbors``, each destination keeps only its nearest
    ``max_neighbors`` sources within ``r``. Edges are grouped by destination,
    nearest source first; a destination with no source within ``r`` gets none.
    """
    src, dst = _positions(src_pos), _positions(dst_pos)
    b = _box(box, src.shape[1])
    src, dst = wrap_positions(src, b), wrap_positions(dst, b)
    if len(src) == 0 or len(dst) == 0:
        return torch.zeros(2, 0, dtype=torch.long)
    tree = cKDTree(src, boxsize=b)
    lists = tree.query_ball_point(dst, r)
    counts = np.fromiter((len(l) for l in lists), dtype=np.int64, count=len(lists))
    s = np.fromiter((j for l in lists for j in l), dtype=np.int64, count=int(counts.sum()))
    t = np.repeat(np.arange(len(dst)), counts)
    dist = np.linalg.norm(_minimum_image(dst[t] - src[s], b), axis=-1)
    order = np.lexsort((dist, t))  # by destination, then by distance
    s, t = s[order], t[order]
    if max_neighbors is not None:
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        keep = np.arange(len(t)) - starts < max_neighbors
        s, t = s[keep], t[keep]
    return _to_edge_index(s, t)


def _minimum_image(d, b):
    return d - b * np.round(d / b)


def periodic_displacement(src_pos, dst_pos, edge_index: torch.Tensor, box) -> torch.Tensor:
    """Minimum-image displacement dst - src of every edge, (E, d), in the default float dtype."""
    src, dst = _positions(src_pos), _positions(dst_pos)
    b = _box(box, src.shape[1])
    ei = edge_index.detach().cpu().numpy()
    d = _minimum_image(dst[ei[1]] - src[ei[0]], b)
    return torch.from_numpy(d).to(torch.get_default_dtype())


def edge_features(src_pos, dst_pos, edge_index: torch.Tensor, box, scale: float = 1.0) -> torch.Tensor:
    """Edge attributes (E, d + 1): [displacement / scale, distance / scale] (minimum image)."""
    d = periodic_displacement(src_pos, dst_pos, edge_index, box) / scale
    return torch.cat([d, d.norm(dim=-1, keepdim=True)], dim=-1)


def grid_positions(shape: Sequence[int], box) -> torch.Tensor:
    """Cell-centre positions (prod(shape), d) of a periodic grid: (i + 0.5) * box / n per axis.

    Rows follow row-major (C) order of the grid, i.e. ``field.reshape(-1)``;
    columns follow the axes of ``shape`` (for a 2-D grid (ny, nx): y, then x).
    """
    shape = tuple(int(n) for n in shape)
    b = _box(box, len(shape))
    axes = [(np.arange(n) + 0.5) * (L / n) for n, L in zip(shape, b)]
    grids = np.meshgrid(*axes, indexing="ij")
    return torch.from_numpy(np.stack([g.ravel() for g in grids], axis=-1)).to(torch.get_default_dtype())


def periodic_position_features(pos, box) -> torch.Tensor:
    """(N, 2 d) features [sin(2 pi x / L), cos(2 pi x / L)] per axis: a continuous encoding of a periodic position."""
    p = _positions(pos)
    angles = 2 * math.pi * p / _box(box, p.shape[1])
    return torch.from_numpy(np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)).to(torch.get_default_dtype())


def stencil_offsets(d: int, neighbours: int = 8) -> list[tuple[int, ...]]:
    """Grid offsets of the nearest-neighbour stencil: 2 for d = 1; 4 (edges) or 8 (edges + diagonals) for d = 2."""
    if d == 1:
        return [(-1,), (1,)]
    if d == 2 and neighbours in (4, 8):
        offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
        if neighbours == 8:
            offsets += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
        return offsets
    raise ValueError(f"stencil needs d = 1, or d = 2 with neighbours 4 or 8; got d={d}, neighbours={neighbours}.")


def mesh_edges(shape: Sequence[int], box=None, neighbours: int = 8, levels: int = 2) -> torch.Tensor:
    """Multi-scale grid <-> grid edges of a periodic grid, as one duplicate-free edge_index (nodes in C order).

    For every level l = 0 .. levels - 1 and every stencil offset o (the 2
    neighbours of a ring; the 4 or 8 neighbours of a 2-D grid), each node i is
    the source of an edge to the node at i + 2**l * o (wrapped periodically):
    the nearest-neighbour stencil of the grid coarsened by 2**l, drawn on the
    fine nodes. The stencils are symmetric, so every edge exists in both
    directions. Self-loops (an offset that wraps onto the node itself) and
    duplicates (two offsets that land on the same node, e.g. +n/2 and -n/2) are
    dropped. Hence, when 2**levels < n along every axis, there are exactly
    ``levels * S * N`` edges (S = 2, 4 or 8 stencil points, N nodes); e.g. a 2-D
    8x8 grid with neighbours=8 has 512 edges for levels=1 and 1024 for levels=2.
    ``box`` is unused (the stencil is topological); it is accepted so that all
    graph builders take the same arguments.
    """
    shape = tuple(int(n) for n in shape)
    if levels < 1:
        raise ValueError(f"mesh_edges needs levels >= 1, got {levels}.")
    offsets = stencil_offsets(len(shape), neighbours)
    coords = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, len(shape))
    src_all, dst_all = [], []
    for level in range(levels):
        step = 2**level
        for o in offsets:
            dst = np.mod(coords + step * np.asarray(o), shape)
            src_all.append(np.ravel_multi_index(tuple(coords.T), shape))
            dst_all.append(np.ravel_multi_index(tuple(dst.T), shape))
    src, dst = np.concatenate(src_all), np.concatenate(dst_all)
    n = math.prod(shape)
    keys = np.unique(src[src != dst] * n + dst[src != dst])
    return _to_edge_index(keys // n, keys % n)
