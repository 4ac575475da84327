"""The pipeline behind ``bench run`` and ``bench score``.

run: data (generated if missing) -> fit (train, val) -> predict (test cases)
-> validate against the template -> score -> results JSON (+ reference rows)
-> the prediction saved under ``runs/`` for ``bench plot``.
"""
from __future__ import annotations

import time
from pathlib import Path

import xarray as xr

from baselines.base import SettingError
from data_scripts.atomic import transaction

from . import results as R
from .errors import UserError
from .names import check_name
from .registry import get_challenge, get_method
from .validate import check

RUNS = Path("runs")


def ensure_data(challenge, size: str, root=None, progress=True, splits=("train", "val", "test")) -> Path:
    """The challenge's dataset (generated if missing), checked against its manifest."""
    from data_scripts.generate import generate
    from data_scripts.manifest import MANIFEST

    from data_scripts.generate import dataset_path

    path = challenge.data_dir(size, root)
    for world in (challenge.world, *getattr(challenge, "extra_worlds", ())):
        where = dataset_path(world, size, root)
        if not (where / MANIFEST).exists():
            print(f"no {world}/{size} dataset at {where}: generating it")
            generate(world, size, root=root, progress=progress, exist_ok=True)
        check_data(where, world, size, splits if world == challenge.world else ("test",))
    return path


_CHECKED: dict = {}


def check_data(path: Path, world: str, size: str, splits) -> None:
    """Refuse a dataset whose arrays (of ``splits``) do not match their sha256 in the manifest.

    Once per process and dataset state (the manifest's modification time): reading and hashing
    the test split of ``qg`` small takes about a second.
    """
    from data_scripts.manifest import MANIFEST, verify

    key = (str(Path(path).resolve()), (Path(path) / MANIFEST).stat().st_mtime_ns, tuple(splits))
    if key in _CHECKED:
        return
    problems = verify(path, splits=splits)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"the {world}/{size} dataset at {path} is damaged: {problems[0]}{more}; run "
                        f"'bench data verify {world} --size {size}' and regenerate it with "
                        f"'bench data generate {world} --size {size} --force'")
    _CHECKED[key] = True


def prediction_path(challenge: str, size: str, name: str) -> Path:
    check_name(name, "result name")
    return RUNS / challenge / size / name / "prediction.zarr"


def save_outputs(pred: xr.Dataset, result: dict, results_dir, challenge: str, size: str, name: str,
                 overwrite: bool) -> Path:
    """Write the results JSON and the prediction together, atomically: both or neither."""
    out = R.results_path(results_dir, challenge, size, name)
    with transaction() as tx:
        R.write(out, result, overwrite=overwrite, tx=tx)
        pred.to_zarr(tx.stage(prediction_path(challenge, size, name)), mode="w", consolidated=False)
    return out


def run(challenge_name: str, method_name: str, size: str = "small", seed: int = 0, results_dir=None,
        root=None, device=None, progress=True, references=True, params: dict | None = None,
        name: str | None = None) -> dict:
    """Fit, predict and score one method; write and return its results JSON (``res["path"]``: where).

    ``name``: the row's name (default: the method's)."""
    import torch

    from baselines.base import config_dict

    challenge = get_challenge(challenge_name)
    name = check_name(name or method_name, "--name")
    R.code_state()  # the code as it is now, before a long fit
    torch.manual_seed(seed)
    method = get_method(method_name, challenge, params, seed=seed, device=device, progress=progress)
    try:
        method.check(challenge)
    except SettingError as exc:
        raise UserError(str(exc)) from None
    data_dir = ensure_data(challenge, size, root, progress)  # after the method and its settings are checked
    from data_scripts.manifest import fingerprint

    method.context = {"workdir": RUNS / challenge.name / size / name, "data_fingerprint": fingerprint(data_dir),
                      "challenge": challenge.name, "size": size}
    train, val = challenge.split(size, "train", root), challenge.split(size, "val", root)
    t0 = time.perf_counter()
    try:
        method.fit(train, val)
    except SettingError as exc:
        raise UserError(str(exc)) from None
    t1 = time.perf_counter()
    pred = _with_bar(challenge, method, size, root, progress)
    t2 = time.perf_counter()
    pred = check(pred, challenge.template(size, root), what=f"the prediction of {method_name!r}",
                 optional_dims=challenge.optional_dims, optional_vars=challenge.optional_vars)
    scores = challenge.score(pred, size, root)
    edge = tuning_edges(method.tuning)
    res = R.build(challenge, size, name, "method", scores,
                  runtime={"fit_s": round(t1 - t0, 3), "predict_s": round(t2 - t1, 3)},
                  device=method.device, data_dir=data_dir, reference=method.reference,
                  notes=" ".join(n for n in (method.notes, edge_note(edge)) if n),
                  params=_jsonable({"config": config_dict(method.config), "tuned": method.describe(),
                                    "tuning": method.tuning}), seed=seed, tuning_edge=_jsonable(edge))
    res["params"]["method"] = method_name
    path = save_outputs(pred, res, results_dir, challenge.name, size, name, overwrite=True)
    if references:
        write_references(challenge, size, root, results_dir, data_dir)
    return dict(res, path=str(path))


def tuning_edges(record) -> dict:
    """The parameters a tuning record (``baselines.core.tuning``) found best at the end of their grid."""
    return dict(record.get("edge") or {}) if isinstance(record, dict) else {}


def edge_note(edge: dict) -> str:
    if not edge:
        return ""
    parts = [f"{k} = {v['value']:g} ({v['end']} end)" for k, v in edge.items()]
    return "Tuned at the edge of its grid: " + ", ".join(parts) + "."


def _with_bar(challenge, method, size, root, progress):
    from tqdm.auto import tqdm

    total, unit = challenge.progress_total(size, root)
    with tqdm(total=total, desc=f"{challenge.name} {method.name}", unit=unit, disable=not progress) as bar:
        return challenge.run(method, size, root, progress=bar.update)


def write_references(challenge, size, root, results_dir, data_dir) -> None:
    """Score the challenge's reference rows (bounds such as 'forecast from truth') once."""
    for name, (pred, note) in challenge.references(size, root).items():
        path = R.results_path(results_dir, challenge.name, size, name)
        if path.exists():
            continue
        pred = check(pred, challenge.template(size, root), what=f"reference {name!r}",
                     optional_dims=challenge.optional_dims, optional_vars=challenge.optional_vars)
        scores = challenge.score(pred, size, root)
        res = R.build(challenge, size, name, "reference", scores, data_dir=data_dir, notes=note)
        R.write(path, res, overwrite=True)


def score_submission(challenge_name: str, path, name: str, size: str = "small", results_dir=None,
                     root=None, overwrite=False) -> dict:
    """Validate and score a participant's file; nothing is written if it is invalid."""
    from data_scripts.manifest import MANIFEST

    from .validate import load

    challenge = get_challenge(challenge_name)
    check_name(name, "--name")
    out = R.results_path(results_dir, challenge.name, size, name)
    if out.exists() and not overwrite:
        raise UserError(f"a result named {name!r} already exists at {out}; pass --overwrite to replace it")
    data_dir = challenge.data_dir(size, root)
    if not (data_dir / MANIFEST).exists():
        raise UserError(f"no {challenge.world}/{size} dataset at {data_dir}; run "
                        f"'bench data generate {challenge.world} --size {size}' first")
    check_data(data_dir, challenge.world, size, ("test",))
    pred = check(load(path), challenge.template(size, root), optional_dims=challenge.optional_dims,
                 optional_vars=challenge.optional_vars)
    scores = challenge.score(pred, size, root)
    res = R.build(challenge, size, name, "submission", scores, data_dir=data_dir,
                  notes=f"submitted file {Path(path).name}")
    written = save_outputs(pred, res, results_dir, challenge.name, size, name, overwrite=overwrite)
    return dict(res, path=str(written))


def _jsonable(obj):
    import json

    import numpy as np

    def conv(o):
        if isinstance(o, dict):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if isinstance(o, (np.floating, float)):
            return float(o) if np.isfinite(o) else None
        if isinstance(o, (np.integer,)):
            return int(o)
        if hasattr(o, "tolist"):
            return conv(o.tolist())
        return o

    out = conv(obj)
    json.dumps(out)
    return out


def format_scores(res: dict) -> str:
    """A small text table of one result, for the terminal."""
    lines = [f"{res['challenge']} / {res['size']} / {res['method']}"]
    for col in res["columns"]:
        s = res["scores"].get(col["key"], {})
        v = s.get("value")
        lo, hi = (s.get("ci95") or [None, None])[:2]
        txt = "–" if v is None else R.format_value(col["fmt"], v)
        if v is not None and lo is not None and hi is not None:
            txt += f"  [{R.format_value(col['fmt'], lo)}, {R.format_value(col['fmt'], hi)}]"
        if s.get("flag"):
            txt += f"  ({s['flag']})"
        lines.append(f"  {col['header']:<22} {txt}")
    rt = res.get("runtime") or {}
    if rt:
        lines.append(f"  fit {rt.get('fit_s', 0):.1f} s, predict {rt.get('predict_s', 0):.1f} s on "
                     f"{res['hardware'].get('gpu') or res['hardware'].get('cpu')}, "
                     f"{res['hardware'].get('torch_threads')} torch thread(s)")
    if res.get("dataset_canonical") is False:
        lines.append("  warning: the dataset is not the canonical one ('bench data verify' says why); "
                     "these scores are not comparable with the leaderboard's")
    if res.get("path"):
        lines.append(f"  wrote {res['path']}")
    return "\n".join(lines)
