"""A U-Net for periodic fields: a 1-D ring (``dim=1``) or a doubly periodic 2-D grid (``dim=2``).

Every convolution pads circularly, so the network has no boundary: rolling the
input by a multiple of the total downsampling factor ``2**(len(channel_mults)-1)``
rolls the output by the same amount (GroupNorm statistics are taken over the
whole periodic field, so they are shift invariant too).

Layout: a stem conv, then per level ``blocks_per_level`` residual blocks and
(except at the deepest level) a stride-2 circular conv that halves every
spatial size; two residual blocks in the middle; then, going back up, a
nearest-neighbour upsampling followed by a circular conv, concatenation with the
skip saved at that level, and ``blocks_per_level`` residual blocks; finally a
GroupNorm-SiLU-conv head whose conv starts at zero.

Optional scalar conditioning (``embedding_dim``): a per-sample scalar ``t``
(a diffusion time in [0, 1], a step index, ...) is embedded with sinusoidal
features and an MLP, and every residual block applies it as a FiLM scale and
shift after its second normalisation.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def group_count(channels: int, max_groups: int = 8) -> int:
    """Largest number of GroupNorm groups <= ``max_groups`` that divides ``channels``."""
    return max(g for g in range(1, max_groups + 1) if channels % g == 0)


def circular_conv(dim: int, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Module:
    """Conv1d/Conv2d with circular ("same" for stride 1) padding."""
    conv = {1: nn.Conv1d, 2: nn.Conv2d}[dim]
    return conv(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                padding_mode="circular")


class SinusoidalEmbedding(nn.Module):
    """Scalar (B,) -> (B, dim): sin/cos features at geometrically spaced frequencies, then a 2-layer MLP.

    The angular frequencies span [1e-3, 1e3], so both a continuous time in [0, 1]
    (resolved by the high frequencies) and an integer step index up to ~1000
    (resolved by the low ones) get distinct, smooth embeddings.
    """

    def __init__(self, dim: int, min_frequency: float = 1e-3, max_frequency: float = 1e3):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"embedding_dim must be an even number >= 2, got {dim}.")
        half = dim // 2
        freqs = torch.exp(torch.linspace(math.log(min_frequency), math.log(max_frequency), half))
        self.register_buffer("frequencies", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.to(self.frequencies.dtype)[:, None] * self.frequencies[None, :]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a (1x1 conv if the width changes) skip; optional FiLM from an embedding."""

    def __init__(self, dim: int, in_channels: int, out_channels: int, embedding_dim: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(group_count(in_channels), in_channels)
        self.conv1 = circular_conv(dim, in_channels, out_channels)
        self.norm2 = nn.GroupNorm(group_count(out_channels), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = circular_conv(dim, out_channels, out_channels)
        self.film = nn.Linear(embedding_dim, 2 * out_channels) if embedding_dim is not None else None
        self.skip = (nn.Identity() if in_channels == out_channels
                     else circular_conv(dim, in_channels, out_channels, kernel_size=1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None:
            scale, shift = self.film(emb).chunk(2, dim=-1)
            shape = scale.shape + (1,) * (h.ndim - 2)
            h = h * (1 + scale.view(shape)) + shift.view(shape)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Upsample(nn.Module):
    """Nearest-neighbour x2 upsampling followed by a circular conv (no checkerboard artefacts)."""

    def __init__(self, dim: int, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = circular_conv(dim, in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """U-Net on periodic 1-D or 2-D fields: (B, in_channels, *spatial) -> (B, out_channels, *spatial).

    ``channel_mults`` gives the width of each level relative to ``base_channels``;
    there are ``len(channel_mults) - 1`` halvings, so every spatial size must be
    divisible by ``2**(len(channel_mults) - 1)``. With ``embedding_dim`` set,
    ``forward`` requires ``t`` (B,) (or a scalar, broadcast to the batch).

    The head's last conv is initialised to zero weights and bias, so the
    untrained network outputs exactly zero: used as an increment (analysis
    minus background, or a denoising residual) it starts from "keep the input",
    and the first gradient steps are not spent undoing a random output.
    """

    def __init__(self, in_channels: int, out_channels: int, dim: int, base_channels: int = 32,
                 channel_mults: Sequence[int] = (1, 2, 4), blocks_per_level: int = 2,
                 embedding_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"UNet dim must be 1 or 2, got {dim}.")
        if len(channel_mults) < 1 or blocks_per_level < 1:
            raise ValueError("UNet needs at least one level and one block per level.")
        self.dim = dim
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.divisor = 2 ** (len(channel_mults) - 1)
        self.embedding = SinusoidalEmbedding(embedding_dim) if embedding_dim is not None else None
        widths = [base_channels * m for m in channel_mults]

        self.stem = circular_conv(dim, in_channels, widths[0])
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        ch = widths[0]
        for level, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(blocks_per_level):
                blocks.append(ResidualBlock(dim, ch, w, embedding_dim, dropout))
                ch = w
            self.down_blocks.append(blocks)
            if level < len(widths) - 1:
                self.downsamples.append(circular_conv(dim, ch, ch, stride=2))

        self.middle = nn.ModuleList([ResidualBlock(dim, ch, ch, embedding_dim, dropout) for _ in range(2)])

        self.upsamples = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for level in reversed(range(len(widths))):
            w = widths[level]
            if level < len(widths) - 1:
                self.upsamples.append(Upsample(dim, ch, w))
                ch = w
            blocks = nn.ModuleList()
            for b in range(blocks_per_level):
                blocks.append(ResidualBlock(dim, ch + (w if b == 0 else 0), w, embedding_dim, dropout))
                ch = w
            self.up_blocks.append(blocks)

        self.head_norm = nn.GroupNorm(group_count(ch), ch)
        self.head = circular_conv(dim, ch, out_channels)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet(dim={self.dim}, in_channels={self.in_channels}) expects input "
                             f"(B, {self.in_channels}{', L' * self.dim}), got shape {tuple(x.shape)}.")
        spatial = tuple(x.shape[2:])
        if any(n % self.divisor for n in spatial):
            raise ValueError(f"UNet spatial size {spatial} must be divisible by {self.divisor} "
                             f"(2**(len(channel_mults) - 1)) along every axis.")

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        self._check(x)
        emb = None
        if self.embedding is not None:
            if t is None:
                raise ValueError("UNet was built with embedding_dim, so forward needs t (B,).")
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
            emb = self.embedding(t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(x.shape[0]))
        elif t is not None:
            raise ValueError("UNet was built without embedding_dim, so forward takes no t.")

        h = self.stem(x)
        skips = []
        for level, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if level < len(self.downsamples):
                h = self.downsamples[level](h)
        for block in self.middle:
            h = block(h, emb)
        for i, blocks in enumerate(self.up_blocks):
            if i > 0:
                h = self.upsamples[i - 1](h)
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
        return self.head(F.silu(self.head_norm(h)))
