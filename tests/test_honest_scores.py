"""Scores that look valid but are not: restarts, null scores, stale column rules."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import leaderboard as L
from bench.results import write
from challenges.base import Score

SIZE = "tiny"


@pytest.fixture(scope="module")
def root(tiny_data):
    return tiny_data("l96")


def test_a_method_that_blows_up_every_cycle_is_recorded_as_diverged(root):
    from baselines.base import Method, Supports
    from bench.validate import check
    from challenges.l96_cycle import L96Cycle

    class Broken(Method):
        name = "broken"
        supports = Supports(families=("cycling",))

        def predict(self, problem):
            return problem.result(problem.background * float("nan"))

    ch = L96Cycle()
    pred = ch.run(Broken(), SIZE, root)
    assert bool(pred["restarted"].all())
    pred = check(pred, ch.template(SIZE, root), optional_dims=ch.optional_dims, optional_vars=ch.optional_vars)
    s = ch.score(pred, SIZE, root)
    assert s["restarts"].value == 1.0 and s["divergence"].value == 1.0
    assert s["divergence"].extra["cycles_to_divergence"] == [0, 0]
    # the same analyses without the restart flags would have looked like a climatology row
    clean = ch.score(pred.drop_vars("restarted"), SIZE, root)
    assert clean["restarts"].value == 0.0


def test_a_null_score_says_why():
    assert Score(float("nan")).to_json()["flag"] == "not a finite number"
    assert Score.undefined("deterministic").to_json() == {"value": None, "ci95": [None, None], "flag": "deterministic"}
    assert Score(1.0, 0.9, 1.1).to_json() == {"value": 1.0, "ci95": [0.9, 1.1]}


def _row(method, ss, columns):
    return {"challenge": "l96-cycle", "size": SIZE, "method": method, "kind": "method", "columns": columns,
            "scores": {"rmse": {"value": 0.5, "ci95": [0.4, 0.6]}, "spread_skill": {"value": ss, "ci95": [None, None]}},
            "hardware": {"cpu": "test"}, "notes": "", "reference": ""}


def test_column_rules_come_from_the_challenge_not_from_the_files(tmp_path):
    """Two files with stale, contradictory rules for spread/skill: the definition (target 1) decides the bold."""
    stale = [{"key": "rmse", "header": "RMSE", "higher_is_better": False, "fmt": "{:.3f}"},
             {"key": "spread_skill", "header": "spread/skill", "higher_is_better": True, "fmt": "{:.2f}"}]
    d = tmp_path / "results"
    write(d / "l96-cycle" / SIZE / "a.json", _row("a", 0.98, stale))
    write(d / "l96-cycle" / SIZE / "b.json", _row("b", 1.60, stale[::-1]))
    text = L.render(d)["README.md"]
    assert "**0.98**" in text and "**1.60**" not in text
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert "restarted cycles" in header  # every column of the current definition, in its order


def test_results_of_an_unknown_challenge_are_an_error(tmp_path):
    from bench.errors import UserError

    d = tmp_path / "results"
    write(d / "no-such" / SIZE / "a.json", dict(_row("a", 1.0, []), challenge="no-such"))
    with pytest.raises(UserError, match="not a registered challenge"):
        L.render(d)


def test_committed_results_hold_the_current_schema():
    """Every committed result names its dataset, says whether it was canonical, and gives reasons for nulls."""
    for path in sorted(Path("leaderboard/results").glob("*/*/*.json")):
        res = json.loads(path.read_text())
        for key in ("dataset_sha256", "dataset_canonical", "tuning_edge", "hardware", "params", "columns"):
            assert key in res, f"{path} lacks {key!r}"
        for name, s in res["scores"].items():
            if isinstance(s, dict) and s.get("value") is None:
                assert s.get("flag"), f"{path}: {name} is null without a reason"
        assert np.isfinite([v for s in res["scores"].values() if isinstance(s, dict)
                            for v in [s.get("value")] if v is not None]).all()
