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

from ..base import Method, Supports


class ClosureMethod(Method):
    supports = Supports(families=("closure",), observes=("none",))

    def forcing(self, x, model):
        raise NotImplementedError

    def predict(self, problem):
        return problem.result(self.forcing(problem.states, problem.model))

    def closure(self, model):
        return lambda x: self.forcing(x, model)


def closure_loss(val, closure, objective: str):
    """A closure's tuning loss on the val split: ``long``, minus its long-run similarity
    (``Split.long_run_loss``), or ``short``, its short-range online error (``Split.evaluate``)."""
    if objective == "long":
        return val.long_run_loss(closure)
    if objective == "short":
        return val.evaluate(closure)
    from ..base import SettingError

    raise SettingError(f"objective must be 'long' or 'short', got {objective!r}")
