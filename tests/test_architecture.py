"""Methods are algorithms over typed problems, matched to challenges by declared capability.

A throwaway variant is one subclass plus one registry line and picks up every
applicable method; training pairs never hold a test-split state; settings
come from ``--param``; listing reads declarations without loading torch.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import registry
from bench.cli import main

SIZE = "tiny"


@pytest.fixture(scope="module")
def root(tiny_data):
    return tiny_data("l96", "qg")


pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_new_variant_is_one_subclass_and_one_registry_line(root, tmp_path, monkeypatch):
    """Register a throwaway L96 cycling variant and a QG DA variant; classical methods run on them unchanged."""
    import types

    from challenges.l96_cycle import L96Cycle
    from challenges.qg_da import QGDA

    mod = types.ModuleType("throwaway_variants")

    class L96CycleQuarter(L96Cycle):
        name = "l96-cycle-quarter"
        summary = "a quarter of the variables, moving"

        def __init__(self):
            super().__init__(obs_fraction=0.25, network="moving")

    class QGDAHalf(QGDA):
        name = "qg-da-half"
        summary = "0.5 per LR cell"
        fraction = 0.5

    mod.L96CycleQuarter, mod.QGDAHalf = L96CycleQuarter, QGDAHalf
    monkeypatch.setitem(sys.modules, "throwaway_variants", mod)
    monkeypatch.setitem(registry.CHALLENGES, "l96-cycle-quarter", "throwaway_variants:L96CycleQuarter")
    monkeypatch.setitem(registry.CHALLENGES, "qg-da-half", "throwaway_variants:QGDAHalf")
    m = registry.matrix()
    assert {"3dvar", "letkf", "enkf", "clim-oi", "climatology"} <= set(m["l96-cycle-quarter"])
    assert {"3dvar", "oi", "interp", "background"} <= set(m["qg-da-half"])
    assert m["l96-cycle-quarter"] == m["l96-cycle"] and m["qg-da-half"] == m["qg-da"]
    monkeypatch.chdir(tmp_path)
    res = tmp_path / "res"
    for ch, method in (("l96-cycle-quarter", "3dvar"), ("l96-cycle-quarter", "clim-oi"), ("qg-da-half", "3dvar"),
                       ("qg-da-half", "oi")):
        assert main(["run", ch, method, "--size", SIZE, "--root", str(root), "--results", str(res), "--quiet"]) == 0
        out = json.loads((res / ch / SIZE / f"{method}.json").read_text())
        assert out["scores"][out["columns"][0]["key"]]["value"] is not None


def test_methods_never_ask_which_world():
    """No method module names a world or a challenge in code (docstrings and comments aside)."""
    import ast

    words = ("qg", "l96", "lorenz", "ssh", "challenge.name", "world")
    for path in sorted(Path("baselines").glob("*.py")) + sorted(Path("baselines/core").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant):
                continue  # docstrings
            if isinstance(node, (ast.Name, ast.Attribute)):
                name = node.id if isinstance(node, ast.Name) else node.attr
                assert not any(w in name.lower() for w in ("qg", "l96", "lorenz")), f"{path}: {name}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in words:
                pytest.fail(f"{path} mentions {node.value!r} in code")


def test_an_unknown_param_is_one_sentence(root, capsys):
    assert main(["run", "l96-cycle", "3dvar", "--size", SIZE, "--root", str(root), "--param", "nope=1"]) == 2
    err = capsys.readouterr().err
    assert "has no parameter 'nope'" in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["run", "l96-cycle", "enkf", "--size", SIZE, "--root", str(root), "--param", "members=many"]) == 2
    assert "not a valid int" in capsys.readouterr().err


def test_params_reach_the_method_and_the_results(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "l96-cycle", "enkf", "--size", SIZE, "--root", str(root), "--results", str(tmp_path / "r"),
                 "--param", "members=12", "--param", "inflation_grid=1.02,1.04", "--quiet"]) == 0
    out = json.loads((tmp_path / "r" / "l96-cycle" / SIZE / "enkf.json").read_text())
    assert out["params"]["config"]["members"] == 12 and out["params"]["config"]["inflation_grid"] == [1.02, 1.04]
    assert out["params"]["tuning"]["mode"] == "batched" and len(out["params"]["tuning"]["trials"]) == 2
    assert "inflation" in out["tuning_edge"]  # a two-value grid: the winner is always at an end
    assert "edge of its grid" in out["notes"]


def test_the_test_split_is_unreachable_for_fit(root):
    ch = registry.get_challenge("l96-cycle")
    with pytest.raises(ValueError, match="train and val"):
        ch.split(SIZE, "test", root)
    with pytest.raises(ValueError, match="train and val"):
        ch.training_pairs(SIZE, "test", root)


def _rows(a):
    a = np.asarray(a, dtype=np.float64)
    return {r.tobytes() for r in a.reshape(a.shape[0], -1)}


@pytest.mark.parametrize("name", ["l96-da", "l96-cycle", "qg-da", "qg-cycle", "qg-map"])
def test_training_pairs_have_the_case_format_and_no_test_state(root, name):
    ch = registry.get_challenge(name)
    for split in ("train", "val"):
        ds = ch.training_pairs(SIZE, split, root)
        assert "sample" in ds.dims and "target" in ds
        target = ds["target"].values
        assert np.isfinite(target).all()
        truth = ch.truth(SIZE, root)[ch.variables[0]]
        test_states = truth.values.reshape(-1, *target.shape[1:]) if name != "qg-map" else truth.values.reshape(
            -1, *target.shape[1:])
        assert not (_rows(target) & _rows(test_states)), f"{name} {split} pairs hold a test state"
    if name.startswith("qg-da") or name == "qg-cycle":
        assert {"background", "obs_x", "obs_y", "obs_value", "obs_sigma"} <= set(ds.data_vars)
        problem = ch.split(SIZE, "train", root).problem(ds.isel(sample=slice(0, 3)))
        assert problem.B == 3 and problem.background.shape[1:] == (2, 16, 16)
    if name.startswith("l96"):
        assert {"background", "y", "obs_mask", "sigma"} <= set(ds.data_vars)
    if name == "qg-map":
        assert ds["obs_value"].chunks is not None  # dask-backed: computed per trajectory on demand
        assert {"obs_time", "obs_valid"} <= set(ds.data_vars)


def test_listing_does_not_load_torch():
    code = ("import sys; from bench.cli import main; main(['list']); "
            "print('TORCH' if 'torch._C' in sys.modules else 'LIGHT')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("LIGHT"), out.stderr[-500:]
    assert "applies" in out.stdout or "supports" in out.stdout


def test_a_path_setting_stays_text():
    """`--param from_checkpoint=runs/checkpoints/<key>/model.pt` (a str field defaulting to None)."""
    from baselines.gnn import GNN

    assert GNN.make_config({"from_checkpoint": "runs/c/model.pt"}).from_checkpoint == "runs/c/model.pt"
    assert GNN.make_config({"from_checkpoint": "none"}).from_checkpoint is None
    assert GNN.make_config({"max_minutes": "5"}).max_minutes == 5.0
    assert GNN.make_config({"max_minutes": "none"}).max_minutes is None
