"""Registries: challenge and method names -> "module:Class", and which methods apply where.

Adding a challenge or a method is one new file plus one line here. Which
methods apply to which challenge is derived from declarations: a challenge
declares its task family, geometry kind and observation kind, a method what it
supports (``baselines.base.Supports``). The modules keep torch and xarray
lazy, so ``bench list`` and ``bench leaderboard`` read the declarations
without loading them.
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
    "qg-da-48h": "challenges.qg_da:QGDA48h",
    "qg-da-48h-sparse": "challenges.qg_da:QGDA48hSparse",
    "qg-da-48h-dense": "challenges.qg_da:QGDA48hDense",
    "qg-cycle": "challenges.qg_cycle:QGCycle",
    "qg-cycle-fixed": "challenges.qg_cycle:QGCycleFixed",
    "qg-fc48": "challenges.qg_fc48:QGFc48",
    "qg-closure": "challenges.qg_closure:QGClosure",
    "l96x-closure": "challenges.l96x_closure:L96XClosure",
}

METHODS = {
    "climatology": "baselines.climatology:Climatology",
    "persistence": "baselines.persistence:Persistence",
    "background": "baselines.background:Background",
    "3dvar": "baselines.var3d:Var3D",
    "enkf": "baselines.enkf:EnKF",
    "letkf": "baselines.letkf:LETKF",
    "oi": "baselines.oi:OI",
    "clim-oi": "baselines.clim_oi:ClimOI",
    "ae": "baselines.ae:AE",
    "ae-oi": "baselines.ae_oi:AEOI",
    "gnn": "baselines.gnn:GNN",
    "diffda": "baselines.diffda:DiffDA",
    "none": "baselines.none:NoClosure",
    "smagorinsky": "baselines.smagorinsky:Smagorinsky",
    "backscatter": "baselines.backscatter:Backscatter",
    "cnn": "baselines.cnn:CNN",
    "cnn-online": "baselines.cnn_online:CNNOnline",
    "polynomial": "baselines.polynomial:Polynomial",
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
    """{name: method class}."""
    return {name: _load(path) for name, path in METHODS.items()}


def applicable(method_cls, challenge) -> bool:
    return method_cls.supports.matches(challenge)


def matrix() -> dict[str, list[str]]:
    """{challenge name: [names of the methods that apply]} from the declarations."""
    ms = methods()
    return {cname: [m for m, cls in ms.items() if applicable(cls, ch)] for cname, ch in challenges().items()}


def get_method(name: str, challenge, params: dict | None = None, seed: int = 0, device=None, progress: bool = True):
    cls = method_class(name)
    if not applicable(cls, challenge):
        fits = [c for c, ch in challenges().items() if applicable(cls, ch)]
        raise UserError(f"method {name!r} does not apply to {challenge.name!r} ({challenge.family}, "
                        f"{challenge.geometry_kind}, {challenge.observes} obs); it supports "
                        f"{cls.supports.describe()}: {', '.join(fits)}")
    try:
        config = cls.make_config(params or {})
    except (ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    return cls(config=config, seed=seed, device=device, progress=progress)
