"""The one interface every method implements (see docs/methods.md).

A method is one file in ``baselines/`` holding a subclass of ``Method`` and one
line in ``bench/registry.py``. It is an algorithm over typed problems
(``challenges.problems``): it declares what it supports (``supports``: task
families, geometry kinds, observation kinds) and never asks which world or
challenge it runs in. The harness calls ``fit(train, val)`` once with the
challenge's train and val ``Split`` (never test), then ``predict(problem)``
once per test problem (once per cycle for the cycling challenges, where the
harness owns the forecast step); ``predict`` returns the prediction Dataset,
usually ``problem.result(tensor)``.

Configuration: each method has a ``Config`` dataclass whose fields are its
settings with documented defaults; ``bench run ... --param key=value`` sets
them (an unknown key is one sentence), and the values used go into the
results JSON. Every method has ``obs_error``: "total" (R = sigma² +
sigma_repr², the default) or "instrument" (sigma² only).

Classical methods estimate their statistics (B, OI scales, inflation) from
train and tune on val only, through ``baselines.core.tuning``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import lazy_loader as lazy

torch = lazy.load("torch")

ALL_GEOMETRIES = ("ring", "periodic2d")
ALL_OBS = ("state", "points")


class SettingError(ValueError):
    """A setting the user gave that cannot work (a missing or mismatched checkpoint file, ...):
    ``bench`` prints its message as one sentence, without a traceback."""


@dataclass(frozen=True)
class Supports:
    """What a method can be run on: task families, geometry kinds, observation kinds."""

    families: tuple[str, ...]
    geometries: tuple[str, ...] = ALL_GEOMETRIES
    observes: tuple[str, ...] = ALL_OBS

    def matches(self, challenge) -> bool:
        return (challenge.family in self.families and challenge.geometry_kind in self.geometries
                and challenge.observes in self.observes)

    def describe(self) -> str:
        return f"{'/'.join(self.families)} on {'/'.join(self.geometries)} grids, {'/'.join(self.observes)} obs"


@dataclass
class Config:
    """Settings every method has."""

    #: observation error variance: "total" (sigma² + sigma_repr²) or "instrument" (sigma² only)
    obs_error: str = "total"

    def __post_init__(self):
        if self.obs_error not in ("total", "instrument"):
            raise ValueError(f"obs_error must be 'total' or 'instrument', got {self.obs_error!r}")


class Method:
    """Base class: override ``fit`` (optional) and ``predict``."""

    name: str = "method"
    summary: str = ""
    supports: Supports = Supports(families=())
    #: the method's settings (a dataclass; ``--param`` fills it)
    Config = Config
    #: free text shown in the leaderboard's Notes column
    notes: str = ""
    reference: str = ""

    def __init__(self, config: Config | None = None, seed: int = 0, device: str | None = None, progress: bool = True):
        self.config = config if config is not None else self.Config()
        self.seed = seed
        self.device = device or default_device()
        self.progress = progress
        #: filled by ``fit``: how the tuned parameters were chosen (``baselines.core.tuning``)
        self.tuning: dict = {}
        #: set by the harness: where to keep checkpoints and logs ("workdir"), the dataset's fingerprint,
        #: the challenge and size (identifiers for caching; an algorithm never branches on them)
        self.context: dict = {}

    def check(self, challenge) -> None:
        """Raise ``SettingError`` for settings that contradict the challenge, before any data is read or
        generated (``bench run`` calls it first). Learned methods: a mapping window longer than the
        training pairs hold (``baselines.learned.check_window``)."""
        from .learned.train import LearnedConfig

        if isinstance(self.config, LearnedConfig) and challenge.family == "mapping":
            from .learned import check_window

            check_window(self.config, getattr(challenge, "pair_half_window", None))

    @classmethod
    def make_config(cls, params: dict) -> Config:
        """The config with ``params`` ({name: text or value}) applied; ValueError with one sentence on a bad key."""
        fields = {f.name: f for f in dataclasses.fields(cls.Config)}
        values = {}
        for key, raw in params.items():
            if key not in fields:
                raise ValueError(f"method {cls.name!r} has no parameter {key!r}; it has: {', '.join(sorted(fields))}")
            values[key] = parse_value(raw, getattr(cls.Config(), key), key, str(fields[key].type))
        return cls.Config(**values)

    def fit(self, train, val) -> None:
        """Learn or tune from the train and val splits (no-op by default)."""

    def predict(self, problem):
        raise NotImplementedError

    def describe(self) -> dict:
        """Tuned parameters and anything a reader needs to reproduce the row."""
        return {}

    def rinv(self, problem):
        """R^-1 of the problem's observations under ``config.obs_error``."""
        return problem.obs.rinv(self.config.obs_error)

    def error_var(self, obs):
        return obs.error_var(self.config.obs_error)


def parse_value(raw, default, key: str, annotation: str = ""):
    """``raw`` (a string from the command line, or a value) converted to the type of ``default``.

    bool (also a bool-or-None field): true/false/1/0/yes/no; int; float; tuple: comma-separated numbers; "none" for a field
    whose ``annotation`` allows None (e.g. ``max_minutes=none``); a default of None takes text
    when the annotation is a str (e.g. a path), else a number.
    """
    if not isinstance(raw, str):
        return raw
    if isinstance(default, dict):
        raise ValueError(f"parameter {key} is a table ({default}); set it from Python, not the command line")
    text = raw.strip()
    if text.lower() == "none" and "None" in annotation:
        return None
    if default is None and annotation.startswith("str"):
        return text
    try:
        if isinstance(default, bool) or (default is None and annotation.startswith("bool")):
            flags = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False,
                     "off": False}
            return flags[text.lower()]
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(float(v) for v in text.split(",") if v.strip())
        if default is None:
            return None if text.lower() == "none" else (int(text) if text.lstrip("-").isdigit() else float(text))
    except (ValueError, KeyError):
        kind = "number" if default is None else type(default).__name__
        raise ValueError(f"parameter {key}={raw!r} is not a valid {kind}") from None
    return text


def held(problem, ds):
    """A state prediction held constant over the problem's forecast leads (``attrs["leads"]``, hours),
    when it has any (forecast challenges); otherwise ``ds`` itself."""
    leads = problem.attrs.get("leads") if hasattr(problem, "attrs") else None
    if leads is None:
        return ds
    import numpy as np

    xr = lazy.load("xarray")
    lead = xr.Variable("lead", np.asarray(leads), {"units": "hours"})
    state = problem.geometry.state_dims
    out = {}
    for var, da in ds.data_vars.items():
        rest = [d for d in da.dims if d not in state]
        out[var] = da.expand_dims(lead=lead).transpose(*rest, "lead", *state)
    return xr.Dataset(out)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def config_dict(config) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


__all__ = ["Config", "Method", "Supports", "config_dict", "default_device", "field"]
