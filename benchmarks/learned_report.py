"""The training record of every learned row in a results directory, as Markdown tables.

    python benchmarks/learned_report.py [leaderboard/results]

Reads only the results JSON (``params.tuned.training`` and, for DiffDA, the sampling
cost): epochs, why training stopped, best val loss, the val curve, parameters, training
and sampling time, hardware. ``benchmarks/README_learned.md`` quotes its output.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(results: Path):
    for f in sorted(results.glob("*/*/*.json")):
        d = json.loads(f.read_text())
        tuned = (d.get("params") or {}).get("tuned") or {}
        tr = tuned.get("training")
        if not tr:
            continue
        yield f.parent.parent.name, f.parent.name, f.stem, d, tuned, tr


def main(argv=None) -> int:
    results = Path((argv or sys.argv[1:] or ["leaderboard/results"])[0])
    print("| challenge | size | method | parameters | train samples | epochs | stopped by | best val loss | "
          "train s | s / epoch | this row | hardware |")
    print("|---|---|---|---:|---:|---:|---|---:|---:|---:|---|---|")
    for ch, size, name, d, tuned, tr in rows(results):
        how = "loaded (from_checkpoint)" if tr.get("from_checkpoint") else ("reused" if tr.get("reused") else "trained")
        ep = tr.get("epochs") or 0
        secs = tr.get("train_seconds")
        data = tr.get("data") or {}
        hw = tr.get("hardware") or {}
        print(f"| {ch} | {size} | {name} | {tr.get('parameters', '')} | {data.get('train_samples', '')} | {ep} | "
              f"{tr.get('stopped_by', '')} | {tr.get('best_val_loss', '')} | {secs or ''} | "
              f"{round(secs / ep, 1) if secs and ep else ''} | {how} | "
              f"{hw.get('cpu', '')}, {hw.get('accelerator', '')} × {hw.get('devices', '')}, "
              f"{hw.get('torch_threads', '')} thread(s) |")
    print()
    print("Val curves (epoch: val loss), one per trained model:")
    print()
    done = set()
    for ch, size, name, d, tuned, tr in rows(results):
        if tr.get("key") in done or not tr.get("val_curve"):
            continue
        done.add(tr.get("key"))
        curve = ", ".join(f"{int(e)}: {v:.4g}" for e, v in tr["val_curve"])
        print(f"* {ch}/{size}/{name}: {curve}")
    sampled = [(ch, size, name, tuned) for ch, size, name, d, tuned, tr in rows(results)
               if "network_evaluations_per_sample" in tuned]
    if sampled:
        print()
        print("| challenge | size | method | members | network evaluations per sample | sampling s (test split) |")
        print("|---|---|---|---:|---:|---:|")
        for ch, size, name, tuned in sampled:
            print(f"| {ch} | {size} | {name} | {tuned.get('members', '')} | "
                  f"{tuned.get('network_evaluations_per_sample', '')} | {tuned.get('sampling_seconds', '')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
