"""Small helpers shared by the network modules."""
from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of trainable (``requires_grad``) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
