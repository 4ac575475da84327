"""``none``: no closure: the coarse model as it is (S = 0). The reference of the similarity score (0 by definition)."""
from __future__ import annotations

import lazy_loader as lazy

from .core.closure import ClosureMethod

torch = lazy.load("torch")


class NoClosure(ClosureMethod):
    name = "none"
    summary = "no closure: the coarse model alone (S = 0)"

    def forcing(self, x, model):
        return torch.zeros_like(x)

    def closure(self, model):
        return None
