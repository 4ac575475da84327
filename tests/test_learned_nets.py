"""Neural-network building blocks of the learned baselines (CPU, one thread, a few seconds).

U-Net: shapes, exact circular equivariance, zero-initialised head, size check,
a tiny regression. Periodic graphs: k-NN and radius graphs against brute force
over minimum-image distances, mesh edge counts. GNN: a batch of samples with
different observation counts, gradient flow, a tiny regression, and one set of
weights on two grid sizes.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.learned.nets import (
    EncodeProcessDecode,
    UNet,
    build_batch,
    count_parameters,
    edge_features,
    grid_positions,
    mesh_edges,
    periodic_displacement,
    periodic_knn,
    periodic_radius,
)

torch.set_num_threads(1)


def _randomise_head(net: UNet, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.head.weight.copy_(0.1 * torch.randn(net.head.weight.shape, generator=g))
        net.head.bias.copy_(0.1 * torch.randn(net.head.bias.shape, generator=g))


# ---------------------------------------------------------------- U-Net

@pytest.mark.parametrize("dim,size,emb", [(1, (40,), None), (1, (40,), 16), (2, (16, 16), None), (2, (32, 32), 16)])
def test_unet_shapes(dim, size, emb):
    torch.manual_seed(0)
    net = UNet(3, 2, dim, base_channels=8, channel_mults=(1, 2), blocks_per_level=1, embedding_dim=emb)
    x = torch.randn(2, 3, *size)
    y = net(x, torch.rand(2)) if emb else net(x)
    assert y.shape == (2, 2, *size)
    assert count_parameters(net) == sum(p.numel() for p in net.parameters())


def test_unet_default_levels_shape_and_zero_head():
    torch.manual_seed(0)
    net = UNet(2, 2, dim=2, base_channels=8)  # channel_mults (1, 2, 4): divisor 4
    x = torch.randn(2, 2, 16, 16)
    y = net(x)
    assert y.shape == x.shape
    assert torch.equal(y, torch.zeros_like(y))  # zero-initialised head: a zero increment at init
    net_t = UNet(1, 1, dim=1, base_channels=8, embedding_dim=16)
    assert torch.equal(net_t(torch.randn(2, 1, 40), torch.tensor([0.1, 0.9])), torch.zeros(2, 1, 40))


@pytest.mark.parametrize("dim,size,shift,emb", [(1, (40,), (4,), None), (1, (40,), (-12,), 16),
                                                (2, (16, 16), (4, 8), None), (2, (16, 32), (-4, 12), 16)])
def test_unet_circular_equivariance(dim, size, shift, emb):
    torch.manual_seed(1)
    net = UNet(2, 3, dim, base_channels=8, channel_mults=(1, 2, 4), blocks_per_level=1, embedding_dim=emb).eval()
    _randomise_head(net)
    x = torch.randn(2, 2, *size)
    t = torch.tensor([0.3, 0.7]) if emb else None
    dims = tuple(range(2, 2 + dim))
    with torch.no_grad():
        y = net(x, t)
        y_shifted = net(torch.roll(x, shift, dims), t)
    assert y.abs().max() > 1e-3  # not trivially zero
    torch.testing.assert_close(y_shifted, torch.roll(y, shift, dims), atol=1e-5, rtol=1e-5)


def test_unet_rejects_indivisible_size_and_misused_t():
    net = UNet(1, 1, dim=2, base_channels=8, channel_mults=(1, 2, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 1, 18, 16))
    with pytest.raises(ValueError, match="takes no t"):
        net(torch.randn(1, 1, 16, 16), torch.zeros(1))
    with pytest.raises(ValueError, match="needs t"):
        UNet(1, 1, dim=1, base_channels=8, embedding_dim=8)(torch.randn(1, 1, 8))
    with pytest.raises(ValueError, match="dim must be 1 or 2"):
        UNet(1, 1, dim=3)


def test_unet_learns_tiny_regression():
    torch.manual_seed(0)
    net = UNet(1, 1, dim=1, base_channels=8, channel_mults=(1, 2), blocks_per_level=1, embedding_dim=8)
    x = torch.randn(16, 1, 16)
    t = torch.rand(16)
    target = 0.5 * (torch.roll(x, 1, -1) + torch.roll(x, -1, -1)) * (1 + t[:, None, None])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.mean((net(x, t) - target) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


# ---------------------------------------------------------------- periodic graphs

def _min_image_dist(src, dst, box):
    d = dst[:, None, :] - src[None, :, :]
    d = d - box * torch.round(d / box)
    return d.norm(dim=-1)  # (N_dst, N_src)


def _point_sets(d, seed):
    g = torch.Generator().manual_seed(seed)
    box = torch.tensor([10.0, 6.0][:d], dtype=torch.float64)
    src = torch.rand(50, d, generator=g, dtype=torch.float64) * box
    dst = torch.rand(30, d, generator=g, dtype=torch.float64) * box
    # points hugging the boundaries (and slightly outside: wrapped by the functions)
    src[:6] = torch.tensor([[0.01, 5.99], [9.99, 0.02], [-0.03, 3.0], [10.02, 6.01], [5.0, 1e-9], [9.999, 5.999]],
                           dtype=torch.float64)[:, :d]
    dst[:4] = torch.tensor([[0.0, 0.0], [9.995, 5.995], [0.005, 3.0], [5.0, 5.999]], dtype=torch.float64)[:, :d]
    return src, dst, box


def _edge_sets(edge_index, n_dst):
    sets = [set() for _ in range(n_dst)]
    for s, t in edge_index.T.tolist():
        sets[t].add(s)
    return sets


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_periodic_knn_matches_brute_force(d, seed):
    src, dst, box = _point_sets(d, seed)
    k = 5
    ei = periodic_knn(src, dst, k, box)
    assert ei.dtype == torch.long and ei.shape == (2, k * len(dst))
    dist = _min_image_dist(src, dst, box)
    expect = dist.topk(k, dim=1, largest=False).indices
    got = _edge_sets(ei, len(dst))
    for i in range(len(dst)):
        assert got[i] == set(expect[i].tolist())


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("seed", [0, 1])
def test_periodic_radius_matches_brute_force(d, seed):
    src, dst, box = _point_sets(d, seed)
    r = 1.3 if d == 2 else 0.6
    dist = _min_image_dist(src, dst, box)
    got = _edge_sets(periodic_radius(src, dst, r, box), len(dst))
    for i in range(len(dst)):
        assert got[i] == set(torch.nonzero(dist[i] <= r).flatten().tolist())
    m = 2
    capped = _edge_sets(periodic_radius(src, dst, r, box, max_neighbors=m), len(dst))
    for i in range(len(dst)):
        within = torch.nonzero(dist[i] <= r).flatten()
        nearest = within[dist[i, within].argsort()[:m]]
        assert capped[i] == set(nearest.tolist())


def test_displacement_and_edge_features_are_minimum_image():
    src, dst, box = _point_sets(2, 3)
    ei = periodic_knn(src, dst, 4, box)
    disp = periodic_displacement(src, dst, ei, box).double()
    assert (disp.abs() <= box / 2 + 1e-6).all()
    dist = _min_image_dist(src, dst, box)[ei[1], ei[0]]
    torch.testing.assert_close(disp.norm(dim=-1), dist, atol=1e-5, rtol=1e-5)
    feats = edge_features(src, dst, ei, box, scale=2.0)
    assert feats.shape == (ei.shape[1], 3)
    torch.testing.assert_close(feats[:, -1].double(), dist / 2.0, atol=1e-5, rtol=1e-5)
    # a point just across the boundary is a near neighbour
    e = torch.tensor([[0], [0]])
    torch.testing.assert_close(periodic_displacement([[9.9, 0.1]], [[0.1, 5.9]], e, [10.0, 6.0]),
                               torch.tensor([[0.2, -0.2]]), atol=1e-6, rtol=0)


def test_grid_positions_are_cell_centres_in_c_order():
    pos = grid_positions((2, 4), (1.0, 8.0))
    assert pos.shape == (8, 2)
    torch.testing.assert_close(pos[:4], torch.tensor([[0.25, 1.0], [0.25, 3.0], [0.25, 5.0], [0.25, 7.0]]))
    torch.testing.assert_close(grid_positions((4,), 40.0).flatten(), torch.tensor([5.0, 15.0, 25.0, 35.0]))


@pytest.mark.parametrize("shape,neighbours,levels,count", [
    ((8, 8), 8, 1, 8 * 64),
    ((8, 8), 8, 2, 2 * 8 * 64),
    ((8, 8), 4, 2, 2 * 4 * 64),
    ((8, 8), 8, 3, 2 * 8 * 64 + 3 * 64),  # 4-cell offsets on 8 cells: +4 == -4, so 3 distinct offsets, not 8
    ((40,), 2, 1, 2 * 40),
    ((40,), 2, 3, 3 * 2 * 40),
    ((4,), 2, 2, 2 * 4 + 4),  # +2 == -2 on a ring of 4
    ((2,), 2, 1, 2),  # +1 == -1 on a ring of 2
])
def test_mesh_edge_counts(shape, neighbours, levels, count):
    ei = mesh_edges(shape, 1.0, neighbours=neighbours, levels=levels)
    assert ei.shape == (2, count)
    n = int(np.prod(shape))
    pairs = set(map(tuple, ei.T.tolist()))
    assert len(pairs) == count  # no duplicates
    assert all(s != t for s, t in pairs)  # no self loops
    assert all((t, s) in pairs for s, t in pairs)  # both directions
    assert ei.min() >= 0 and ei.max() < n


def test_mesh_edges_are_the_stencil():
    ei = mesh_edges((8, 8), 1.0, neighbours=8, levels=1)
    nbrs = sorted(ei[1, ei[0] == 0].tolist())  # node (0, 0): rows 7, 0, 1 x cols 7, 0, 1 minus itself
    assert nbrs == sorted([0 * 8 + 1, 0 * 8 + 7, 1 * 8 + 0, 7 * 8 + 0, 1 * 8 + 1, 1 * 8 + 7, 7 * 8 + 1, 7 * 8 + 7])
    ring = mesh_edges((40,), 40.0, levels=2)
    assert sorted(ring[1, ring[0] == 0].tolist()) == [1, 2, 38, 39]


# ---------------------------------------------------------------- GNN

BOX = (100.0, 100.0)


def _gnn_batch(grid_shape, counts, seed, k=4):
    g = torch.Generator().manual_seed(seed)
    b, n = len(counts), int(np.prod(grid_shape))
    pos = [torch.rand(m, 2, generator=g) * torch.tensor(BOX) for m in counts]
    feat = [torch.randn(m, 3, generator=g) for m in counts]  # value, sigma, time offset
    grid = torch.randn(b, n, 2, generator=g)  # two background channels
    return build_batch(pos, feat, grid, grid_shape, BOX, k=k, mesh_neighbours=8, mesh_levels=2, edge_scale=10.0)


def _gnn(**kw):
    torch.manual_seed(0)
    return EncodeProcessDecode(obs_features=3 + 4, grid_features=2 + 4, out_features=2, **kw)


def test_the_factored_layer_is_a_one_hidden_layer_message_mlp_summed_over_in_edges():
    """Brute force over the edges of a bipartite graph: m_i = W sum_j silu(A h_j + B h_i + C e_ij) + b."""
    from baselines.learned.nets.gnn import FactoredInteractionLayer

    torch.manual_seed(0)
    layer = FactoredInteractionLayer(hidden=6, edge_features=3).double()
    src, dst = torch.randn(5, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    ei = torch.tensor([[0, 1, 4, 2, 2, 3], [0, 0, 1, 2, 3, 3]])
    e = torch.randn(6, 3, dtype=torch.float64)
    out, e_out = layer((src, dst), ei, e)
    with torch.no_grad():
        want = []
        for i in range(4):
            s = sum((torch.nn.functional.silu(layer.src(src[j]) + layer.dst(dst[i]) + layer.edge(e[k]))
                     for k, (j, ii) in enumerate(ei.T.tolist()) if ii == i), torch.zeros(6, dtype=torch.float64))
            want.append(dst[i] + layer.node_mlp(torch.cat([dst[i], layer.out(s)])))
    torch.testing.assert_close(out, torch.stack(want))
    assert e_out is e


def test_build_batch_disjoint_union():
    batch = _gnn_batch((8, 8), [7, 12], seed=0, k=3)
    assert batch.obs_x.shape == (19, 7) and batch.grid_x.shape == (128, 6)
    assert batch.obs_ptr.tolist() == [0, 7, 19]
    src, dst = batch.obs_to_grid_edge_index
    assert batch.obs_to_grid_edge_index.shape == (2, 2 * 64 * 3)
    first = dst < 64  # sample 0's grid nodes only receive sample 0's observations
    assert (src[first] < 7).all() and (src[~first] >= 7).all()
    assert batch.mesh_edge_index.shape == (2, 2 * 1024) and batch.mesh_edge_attr.shape == (2048, 3)
    m0 = batch.mesh_edge_index[:, :1024]
    assert (m0 < 64).all() and torch.equal(batch.mesh_edge_index[:, 1024:], m0 + 64)
    radius = build_batch([torch.rand(5, 2) * 100], [torch.randn(5, 3)], torch.randn(1, 64, 2), (8, 8), BOX,
                         k=2, radius=30.0)
    assert radius.obs_to_grid_edge_index.shape[1] <= 2 * 64


@pytest.mark.parametrize("layer", ["interaction", "factored"])
def test_gnn_runs_and_gradients_reach_every_parameter(layer):
    model = _gnn(hidden=16, processor_layers=2, layer=layer)
    batch = _gnn_batch((8, 8), [5, 11], seed=1)
    out = model(*batch.inputs())
    assert out.shape == (128, 2)
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised decoder head
    assert batch.unbatch(out).shape == (2, 64, 2)
    target = torch.randn(128, 2)
    # the zero head blocks gradients upstream at init; one step lets them through
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        torch.mean((model(*batch.inputs()) - target) ** 2).backward()
        if _ == 0:
            opt.step()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("layer", ["interaction", "factored"])
def test_gnn_learns_tiny_task(layer):
    model = _gnn(hidden=32, processor_layers=2, layer=layer)
    batch = _gnn_batch((8, 8), [6, 10], seed=2)
    # target: a blend of the background and the nearest observation's value (needs the obs->grid messages)
    src, dst = batch.obs_to_grid_edge_index
    assert torch.equal(dst.view(128, 4)[:, 0], torch.arange(128))  # k = 4 edges per grid node, nearest first
    nearest = batch.obs_x[src.view(128, 4)[:, 0], 0]
    target = torch.stack([0.5 * batch.grid_x[:, 0] + nearest, batch.grid_x[:, 1] - 0.3 * nearest], dim=-1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = torch.mean((model(*batch.inputs()) - target) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


@pytest.mark.parametrize("layer", ["interaction", "factored"])
def test_gnn_same_weights_on_two_grid_sizes(layer):
    model = _gnn(hidden=16, processor_layers=2, layer=layer)
    with torch.no_grad():
        model.decoder[-1].weight.normal_(0, 0.1)
    for shape in [(16, 16), (32, 32)]:
        batch = _gnn_batch(shape, [20, 33], seed=3)
        with torch.no_grad():
            out = batch.unbatch(model(*batch.inputs()))
        assert out.shape == (2, shape[0] * shape[1], 2)
        assert torch.isfinite(out).all() and out.abs().max() > 0
