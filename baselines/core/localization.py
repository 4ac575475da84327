"""Gaspari–Cohn localisation (Gaspari & Cohn 1999, eq. 4.10).

``gaspari_cohn(d, c)`` is the compactly supported fifth-order piecewise
rational correlation function with half-width ``c``: 1 at distance 0, zero
beyond ``2 c``. Radii are quoted as in Sakov's and DAPPER's codes: the
*localisation radius* r is the distance at which the taper equals
``exp(-1/2)`` (where a Gaussian of standard deviation r would), so
``c = GC_HALF_WIDTH_PER_RADIUS * r`` (= 1.7386 r) and the support is 3.48 r.
"""
from __future__ import annotations

import lazy_loader as lazy

torch = lazy.load("torch")

#: c / r, where GC(r; c) = exp(-1/2): root of 1 - 5/3 x² + 5/8 x³ + 1/2 x⁴ - 1/4 x⁵ = e^{-1/2}, x = r / c
GC_HALF_WIDTH_PER_RADIUS = 1.0 / 0.5751792193905233


def gaspari_cohn(d: torch.Tensor, c) -> torch.Tensor:
    """Gaspari–Cohn taper of distances ``d`` for half-width(s) ``c`` (broadcast), in [0, 1]."""
    z = d / c
    inner = 1 - 5 / 3 * z**2 + 5 / 8 * z**3 + 1 / 2 * z**4 - 1 / 4 * z**5
    outer = 4 - 5 * z + 5 / 3 * z**2 + 5 / 8 * z**3 - 1 / 2 * z**4 + 1 / 12 * z**5 - 2 / (3 * z.clamp_min(1e-12))
    return torch.where(z <= 1, inner, torch.where(z < 2, outer, torch.zeros_like(z)))


def periodic_distance(n: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Distances (n, n) between the points of a ring of n equally spaced points (grid units)."""
    i = torch.arange(n, dtype=dtype, device=device)
    d = (i[:, None] - i[None, :]).abs()
    return torch.minimum(d, n - d)


def taper(d: torch.Tensor, radius) -> torch.Tensor:
    """Gaspari–Cohn weights for distances ``d`` at localisation radius ``radius`` (DAPPER's convention)."""
    return gaspari_cohn(d, GC_HALF_WIDTH_PER_RADIUS * radius)
