"""What every closure method shares: predict the forcing offline, and hand the harness a closure to run online.

A closure method implements ``forcing(x, model)``: the subgrid forcing S
(B, *state_shape) of coarse states x, the term added to the coarse model's
tendency (``challenges.problems.ClosureProblem``), for the coarse ``model`` it
will run in (a physical closure reads the model's grid and operators; a
learned one ignores it). ``predict`` applies it to a problem's states;
``closure(model)`` returns the callable x -> S that the online harness adds to
the model's tendency every step (None: no closure).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Config, Method, Supports


class ClosureMethod(Method):
    supports = Supports(families=("closure",), observes=("none",))

    def forcing(self, x, model):
        raise NotImplementedError

    def predict(self, problem):
        return problem.result(self.forcing(problem.states, problem.model))

    def closure(self, model):
        return lambda x: self.forcing(x, model)



@dataclass
class TunedClosureConfig(Config):
    """The settings of a closure whose constants are tuned on the val split: ``objective`` ``long``, the
    long-run similarity (``Split.long_run_loss``), or ``short``, the short-range online error
    (``Split.evaluate``); checked when the settings are made, before any data is read."""

    objective: str = "long"

    def __post_init__(self):
        super().__post_init__()
        if self.objective not in ("long", "short"):
            from ..base import SettingError

            raise SettingError(f"objective must be 'long' or 'short', got {self.objective!r}")


def closure_loss(val, closure, objective: str):
    """A closure's tuning loss on the val split for ``objective`` (``TunedClosureConfig``)."""
    return val.long_run_loss(closure) if objective == "long" else val.evaluate(closure)
