"""The pipeline behind ``bench run`` and ``bench score``.

run: data (generated if missing) -> fit (train, val) -> predict (test cases)
-> validate against the template -> score -> results JSON (+ reference rows)
-> the prediction saved under ``runs/`` for ``bench plot``.
"""
from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import xarray as xr

from . import results as R
from .errors import UserError
from .registry import get_challenge, get_method
from .validate import check

RUNS = Path("runs")


def ensure_data(challenge, size: str, root=None, progress=True) -> Path:
    from data_scripts.generate import generate
    from data_scripts.manifest import MANIFEST

    path = challenge.data_dir(size, root)
    if not (path / MANIFEST).exists():
        print(f"no {challenge.world}/{size} dataset at {path}: generating it")
        generate(challenge.world, size, root=root, progress=progress)
    return path


def prediction_path(challenge: str, size: str, name: str) -> Path:
    return RUNS / challenge / size / name / "prediction.zarr"


def save_prediction(pred: xr.Dataset, path: Path) -> None:
    """Write atomically (temporary sibling, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:6]}"
    pred.to_zarr(tmp, mode="w", consolidated=False)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def run(challenge_name: str, method_name: str, size: str = "small", seed: int = 0, results_dir=None,
        root=None, device=None, progress=True, references=True) -> dict:
    """Fit, predict and score one method; write and return its results JSON."""
    import torch

    challenge = get_challenge(challenge_name)
    torch.manual_seed(seed)
    data_dir = ensure_data(challenge, size, root, progress)
    method = get_method(method_name, challenge, size, seed=seed, device=device)
    train, val = challenge.train_val(size, root)
    t0 = time.perf_counter()
    method.fit(train, val)
    t1 = time.perf_counter()
    pred = _with_bar(challenge, method, size, root, progress)
    t2 = time.perf_counter()
    pred = check(pred, challenge.template(size, root), what=f"the prediction of {method_name!r}",
                 optional_dims=challenge.optional_dims)
    scores = challenge.score(pred, size, root)
    res = R.build(challenge, size, method_name, "method", scores,
                  runtime={"fit_s": round(t1 - t0, 3), "predict_s": round(t2 - t1, 3)},
                  device=method.device, data_dir=data_dir, reference=method.reference,
                  notes=method.notes, params=_jsonable(method.describe()), seed=seed)
    R.write(R.results_path(results_dir, challenge.name, size, method_name), res, overwrite=True)
    save_prediction(pred, prediction_path(challenge.name, size, method_name))
    if references:
        write_references(challenge, size, root, results_dir, data_dir)
    return res


def _with_bar(challenge, method, size, root, progress):
    from tqdm.auto import tqdm

    total = challenge.n_cases(size, root) if hasattr(challenge, "n_cases") else None
    with tqdm(total=total, desc=f"{challenge.name} {method.name}", unit="case", disable=not progress) as bar:
        return challenge.run(method, size, root, progress=bar.update)


def write_references(challenge, size, root, results_dir, data_dir) -> None:
    """Score the challenge's reference rows (bounds such as 'forecast from truth') once."""
    for name, (pred, note) in challenge.references(size, root).items():
        path = R.results_path(results_dir, challenge.name, size, name)
        if path.exists():
            continue
        pred = check(pred, challenge.template(size, root), what=f"reference {name!r}",
                     optional_dims=challenge.optional_dims)
        scores = challenge.score(pred, size, root)
        res = R.build(challenge, size, name, "reference", scores, data_dir=data_dir, notes=note)
        R.write(path, res, overwrite=True)


def score_submission(challenge_name: str, path, name: str, size: str = "small", results_dir=None,
                     root=None, overwrite=False) -> dict:
    """Validate and score a participant's file; nothing is written if it is invalid."""
    from .validate import load

    challenge = get_challenge(challenge_name)
    out = R.results_path(results_dir, challenge.name, size, name)
    if out.exists() and not overwrite:
        raise UserError(f"a result named {name!r} already exists at {out}; pass --overwrite to replace it")
    data_dir = challenge.data_dir(size, root)
    from data_scripts.manifest import MANIFEST

    if not (data_dir / MANIFEST).exists():
        raise UserError(f"no {challenge.world}/{size} dataset at {data_dir}; run "
                        f"'bench data generate {challenge.world} --size {size}' first")
    pred = check(load(path), challenge.template(size, root), optional_dims=challenge.optional_dims)
    scores = challenge.score(pred, size, root)
    res = R.build(challenge, size, name, "submission", scores, data_dir=data_dir, notes=f"submitted file {Path(path).name}")
    R.write(out, res, overwrite=overwrite)
    save_prediction(pred, prediction_path(challenge.name, size, name))
    return res


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
                     f"{res['hardware'].get('gpu') or res['hardware'].get('cpu')}")
    return "\n".join(lines)
