"""Leaderboard tables: from JSON alone, sorted by the primary score, byte-identical, staleness check."""
from __future__ import annotations

import json

import pytest

from bench import leaderboard as L
from bench.cli import main
from bench.errors import UserError
from bench.results import write

COLS = [{"key": "mu", "header": "µ(RMSE)", "higher_is_better": True, "fmt": "{:.3f}"},
        {"key": "lambda_x_km", "header": "λx (km)", "higher_is_better": False, "fmt": "{:.0f}"}]


def res(method, mu, lx, kind="method"):
    return {"challenge": "qg-map", "size": "tiny", "method": method, "kind": kind, "columns": COLS,
            "scores": {"mu": {"value": mu, "ci95": [mu - 0.01, mu + 0.01]},
                       "lambda_x_km": {"value": lx, "ci95": [None, None]}},
            "hardware": {"cpu": "test cpu"}, "notes": "n", "reference": "r"}


@pytest.fixture
def results_dir(tmp_path):
    d = tmp_path / "results"
    for r in (res("oi", 0.8, 150.0), res("climatology", 0.1, 900.0), res("gnn", 0.85, 170.0),
              res("truth-bound", 1.0, 10.0, kind="reference")):
        write(d / "qg-map" / "tiny" / f"{r['method']}.json", r)
    return d


def test_rows_sorted_by_primary_and_best_marked(results_dir):
    text = L.render(results_dir)["README.md"]
    rows = [line for line in text.splitlines() if line.startswith("| ") and "Method" not in line]
    names = [r.split("|")[1].strip() for r in rows]
    assert names == ["*truth-bound*", "gnn", "oi", "climatology"]
    assert "**0.850 ± 0.010**" in text          # best µ among methods (references excluded)
    assert "**150**" in text                    # best λx is the smallest


def test_regeneration_is_byte_identical_and_check_detects_staleness(results_dir, tmp_path):
    out = tmp_path / "lb"
    L.write(results_dir, out)
    first = (out / "README.md").read_bytes()
    L.write(results_dir, out)
    assert (out / "README.md").read_bytes() == first
    assert main(["leaderboard", "--results", str(results_dir), "--out", str(out), "--check"]) == 0
    write(results_dir / "qg-map" / "tiny" / "new.json", res("new", 0.5, 300.0))
    assert main(["leaderboard", "--results", str(results_dir), "--out", str(out), "--check"]) == 1


def test_existing_name_needs_overwrite(results_dir):
    with pytest.raises(UserError, match="already exists"):
        write(results_dir / "qg-map" / "tiny" / "oi.json", res("oi", 0.9, 100.0))


def test_bad_json_is_one_sentence(results_dir, capsys):
    (results_dir / "qg-map" / "tiny" / "bad.json").write_text("{")
    assert main(["leaderboard", "--results", str(results_dir), "--out", str(results_dir.parent)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_results_json_has_no_nan(results_dir):
    for p in results_dir.rglob("*.json"):
        json.loads(p.read_text())


def test_a_score_that_rounds_to_zero_has_no_minus_sign(tmp_path):
    d = tmp_path / "results"
    write(d / "qg-map" / "tiny" / "climatology.json", res("climatology", -2e-16, 1000.0))
    text = L.render(d)["README.md"]
    assert "| climatology | **0.000 ± 0.010** |" in text and "-0.000" not in text


def test_the_challenge_note_heads_its_table(tmp_path):
    d = tmp_path / "results"
    write(d / "qg-da" / "tiny" / "oi.json", dict(res("oi", 0.9, 80.0), challenge="qg-da"))
    page = L.render(d)["qg-da.md"]
    note = L.challenge_note("qg-da")
    assert note.startswith("Reading the table") and "\n" not in note
    assert page.index(note) < page.index("| Method |")
    assert L.challenge_note("no-such-challenge") == ""


def test_a_learned_row_states_how_it_was_trained():
    from bench.leaderboard import training_note

    rec = {"epochs": 6, "stopped_by": "time limit", "train_seconds": 1200, "hardware": {"accelerator": "cpu"},
           "val_curve": [[0, 0.9], [1, 0.8], [2, 0.7]]}
    note = training_note({"params": {"tuned": {"training": rec}}})
    assert note == "Trained 6 epochs in 20 min on cpu, stopped by time limit with the val loss still falling."
    rec["val_curve"][-1][1] = 0.85
    assert "still falling" not in training_note({"params": {"tuned": {"training": rec}}})
    assert training_note({"params": {"tuned": {"B_scale": 1.0}}}) == ""
    rec["data"] = {"augmentation": "north-south reflection"}
    assert training_note({"params": {"tuned": {"training": rec}}}).endswith(
        " Half the training samples mirrored at random: north-south reflection.")
    rec["data"] = {"window_days": 15.0, "translation": "periodic shifts"}
    assert training_note({"params": {"tuned": {"training": rec}}}).endswith(
        " Observations within ±15 days of each map. Every training sample translated at random: periodic shifts.")
    mapping = {"challenge_info": {"family": "mapping"}, "params": {"config": {"half_window": 5.0},
                                                                   "tuned": {"training": {**rec, "data": {}}}}}
    assert training_note(mapping).endswith(" Observations within ±5 days of each map.")
    del rec["data"]
    online = {"offline_training": {"epochs": 15, "stopped_by": "max_epochs", "train_seconds": 600},
              "online_training": rec, "unroll": "1 to 3 snapshots, +1 every 4 epochs"}
    assert training_note({"params": {"tuned": online}}) == (
        "Offline: trained 15 epochs in 10 min on cpu, stopped by max_epochs. Online: trained 6 epochs in 20 min on "
        "cpu, stopped by time limit. Unroll 1 to 3 snapshots, +1 every 4 epochs.")
    ens = {"training": rec, "members": 16, "network_evaluations_per_sample": 50, "conditioning": "inpainting",
           "perturbed_observations": True}
    assert training_note({"params": {"tuned": ens}}).endswith(
        "16 members, 50 network evaluations each; observations by inpainting, perturbed per member.")
    ens.update(replacement="matched", perturbed_observations=False)
    assert training_note({"params": {"tuned": ens}}).endswith(
        "observations by inpainting (noise-matched replacement: each member samples the observation error).")
    ens.update(replacement="blend", mask_weight=0.5019)
    assert "inpainting (the paper's blend, weight 0.50)" in training_note({"params": {"tuned": ens}})


def test_a_row_on_another_dataset_is_listed_not_ranked(tmp_path):
    from data_scripts.manifest import canonical_fingerprints

    canon = canonical_fingerprints()["qg"]["tiny"]["sha256"]
    d = tmp_path / "results"
    for r, sha in ((res("oi", 0.8, 150.0), canon), (res("gnn", 0.95, 100.0), "0" * 64)):
        write(d / "qg-map" / "tiny" / f"{r['method']}.json", dict(r, dataset_sha256=sha))
    text = L.render(d)["README.md"]
    ranked, other = text.split("Not ranked")
    rows = [line.split("|")[1].strip() for line in ranked.splitlines() if line.startswith("| ") and "Method" not in line]
    assert rows == ["oi"]
    assert "scored on another dataset than the canonical one" in other and ": gnn." in other
    listed = [line.split("|")[1].strip() for line in other.splitlines() if line.startswith("| ") and "Method" not in line]
    assert listed == ["gnn"] and "On dataset 000000000000… (not comparable with the table above" in other
