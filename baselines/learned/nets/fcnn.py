"""A fully convolutional network for periodic fields (the closures' CNN, after Ross et al. 2023's FCNN).

A stack of circular convolutions (``widths`` channels, ``kernel`` wide, ReLU
between them; no pooling, no normalisation that couples samples), 1-D on a
ring or 2-D on a doubly periodic grid: a local, translation-equivariant map
from the coarse state's channels to the forcing's, whose receptive field is
``len(widths) * (kernel - 1) + 1`` cells. The last layer starts at zero, so an
untrained network is "no closure": online training starts from a stable model.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .unet import circular_conv


class FCNN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dim: int, widths: Sequence[int] = (64, 64, 32, 32, 32, 32, 32),
                 kernel: int = 5):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}.")
        layers, c = [], in_channels
        for w in widths:
            layers += [circular_conv(dim, c, int(w), kernel), nn.ReLU()]
            c = int(w)
        self.body = nn.Sequential(*layers)
        self.head = circular_conv(dim, c, out_channels, kernel)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
