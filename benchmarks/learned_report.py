"""The training record of every learned row in a results directory, as Markdown tables.

    python benchmarks/learned_report.py [leaderboard/results] [--update benchmarks/README_learned.md]

Reads only the results JSON (``params.tuned.training`` and, for DiffDA, the sampling
cost): epochs, why training stopped, best val loss, the val curve, parameters, training
and sampling time, hardware. ``benchmarks/README_learned.md`` holds its output between
``<!-- learned_report:training -->`` / ``<!-- learned_report:sampling -->`` and their
``<!-- /learned_report:... -->`` closing markers; ``--update FILE`` rewrites those parts in place.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(results: Path):
    for f in sorted(results.glob("*/*/*.json")):
        d = json.loads(f.read_text())
        tuned = (d.get("params") or {}).get("tuned") or {}
        tr = tuned.get("training")
        if not tr:
            continue
        yield f.parent.parent.name, f.parent.name, f.stem, d, tuned, tr


def training_lines(results: Path) -> list[str]:
    out = ["| challenge | size | method | parameters | train samples | epochs | stopped by | best val loss | "
           "train s | s / epoch | this row | hardware |",
           "|---|---|---|---:|---:|---:|---|---:|---:|---:|---|---|"]
    for ch, size, name, d, tuned, tr in rows(results):
        how = "loaded (from_checkpoint)" if tr.get("from_checkpoint") else ("reused" if tr.get("reused") else "trained")
        ep = tr.get("epochs") or 0
        secs = tr.get("train_seconds")
        data = tr.get("data") or {}
        hw = tr.get("hardware") or {}
        out.append(f"| {ch} | {size} | {name} | {tr.get('parameters', '')} | {data.get('train_samples', '')} | {ep} | "
                   f"{tr.get('stopped_by', '')} | {tr.get('best_val_loss', '')} | {secs or ''} | "
                   f"{round(secs / ep, 1) if secs and ep else ''} | {how} | "
                   f"{hw.get('cpu', '')}, {hw.get('accelerator', '')} × {hw.get('devices', '')}, "
                   f"{hw.get('torch_threads', '')} thread(s) |")
    out += ["", "Val curves (epoch: val loss), one per trained model:", ""]
    done = set()
    for ch, size, name, d, tuned, tr in rows(results):
        if tr.get("key") in done or not tr.get("val_curve"):
            continue
        done.add(tr.get("key"))
        curve = ", ".join(f"{int(e)}: {v:.4g}" for e, v in tr["val_curve"])
        out.append(f"* {ch}/{size}/{name}: {curve}")
    return out


def sampling_lines(results: Path) -> list[str]:
    out = ["| challenge | size | method | members | network evaluations per sample | sampling s (test split) |",
           "|---|---|---|---:|---:|---:|"]
    for ch, size, name, d, tuned, tr in rows(results):
        if "network_evaluations_per_sample" in tuned:
            out.append(f"| {ch} | {size} | {name} | {tuned.get('members', '')} | "
                       f"{tuned.get('network_evaluations_per_sample', '')} | {tuned.get('sampling_seconds', '')} |")
    return out


def update(path: Path, parts: dict[str, list[str]]) -> None:
    """Replace each ``<!-- learned_report:NAME -->`` ... ``<!-- /learned_report:NAME -->`` block of ``path``."""
    lines = path.read_text().splitlines()
    for name, new in parts.items():
        start, end = f"<!-- learned_report:{name} -->", f"<!-- /learned_report:{name} -->"
        if start not in lines or end not in lines:
            raise SystemExit(f"learned_report: {path} has no {start} ... {end} block")
        i, j = lines.index(start), lines.index(end)
        lines = lines[:i + 1] + new + lines[j:]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", default="leaderboard/results")
    ap.add_argument("--update", help="rewrite the generated blocks of this Markdown file instead of printing")
    args = ap.parse_args(argv)
    results = Path(args.results)
    parts = {"training": training_lines(results), "sampling": sampling_lines(results)}
    if args.update:
        update(Path(args.update), parts)
    else:
        print("\n".join(parts["training"] + [""] + parts["sampling"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
