"""Registries: challenge and method names -> "module:Class".

Adding a challenge or a method is one new file plus one line here. Imports
are lazy so that ``bench list`` and scoring never import training stacks.
"""
from __future__ import annotations

import importlib

from .errors import UserError

CHALLENGES = {
    "l96-da": "challenges.l96_da:L96DA",
    "l96-cycle": "challenges.l96_cycle:L96Cycle",
    "l96-cycle-half": "challenges.l96_cycle:L96CycleHalf",
    "l96-cycle-half-moving": "challenges.l96_cycle:L96CycleHalfMoving",
    "l96-fc48": "challenges.l96_fc48:L96Fc48",
    "qg-map": "challenges.qg_map:QGMap",
    "qg-map-swath": "challenges.qg_map:QGMapSwath",
    "qg-map-random": "challenges.qg_map:QGMapRandom",
    "qg-da": "challenges.qg_da:QGDA",
    "qg-da-sparse": "challenges.qg_da:QGDASparse",
    "qg-da-dense": "challenges.qg_da:QGDADense",
    "qg-cycle": "challenges.qg_cycle:QGCycle",
    "qg-cycle-fixed": "challenges.qg_cycle:QGCycleFixed",
    "qg-fc48": "challenges.qg_fc48:QGFc48",
}

METHODS = {
    "climatology": "baselines.climatology:Climatology",
    "persistence": "baselines.persistence:Persistence",
    "background": "baselines.background:Background",
    "3dvar": "baselines.var3d:Var3D",
    "enkf": "baselines.enkf:EnKF",
    "letkf": "baselines.letkf:LETKF",
    "oi": "baselines.oi:OI",
    "interp": "baselines.interp:Interp",
}


def _load(path: str):
    mod, cls = path.split(":")
    return getattr(importlib.import_module(mod), cls)


def challenges() -> dict:
    """{name: Challenge instance}."""
    return {name: _load(path)() for name, path in CHALLENGES.items()}


def get_challenge(name: str):
    if name not in CHALLENGES:
        raise UserError(f"unknown challenge {name!r}; choose one of: {', '.join(CHALLENGES) or '(none yet)'}")
    return _load(CHALLENGES[name])()


def method_class(name: str):
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(METHODS) or '(none yet)'}")
    return _load(METHODS[name])


def methods() -> dict:
    """{name: (summary, applies_to)}."""
    out = {}
    for name, path in METHODS.items():
        cls = _load(path)
        out[name] = (cls.summary, cls.applies_to)
    return out


def get_method(name: str, challenge, size: str, seed: int = 0, device=None):
    cls = method_class(name)
    if challenge.name not in cls.applies_to:
        raise UserError(f"method {name!r} does not apply to {challenge.name!r}; it applies to: "
                        f"{', '.join(cls.applies_to)}")
    return cls(challenge=challenge, size=size, seed=seed, device=device)
