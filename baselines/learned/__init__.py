"""The shared training stack of the learned methods (``ae``, ``gnn``, ``diffda``): data, features, Lightning.

``fit_learned`` trains (or reuses, or loads with ``from_checkpoint``) a method's
``Learner`` on the challenge's training pairs; ``predict_learned`` applies it
to a test problem (an ``AnalysisProblem``, or a ``MappingProblem`` cut into one
window per day).
"""
from __future__ import annotations

import lazy_loader as lazy

torch = lazy.load("torch")


def check_window(cfg, held) -> None:
    """SettingError if a mapping method's ``half_window`` exceeds the +-``held`` days its training pairs hold."""
    from ..base import SettingError

    if held is not None and getattr(cfg, "half_window", None) is not None and float(cfg.half_window) > float(held):
        raise SettingError(f"half_window={cfg.half_window:g} days is longer than the +-{held:g} days of observations "
                           f"the training pairs hold; use at most {held:g}")


def fit_learned(method, train, val, make, method_files):
    """(learner, record) of ``method``: see ``baselines.learned.train.fit_or_reuse``; ``method_files``: the
    method's own source file, or a list of the files its training depends on (checkpoint key)."""
    from ..base import SettingError
    from .data import PairsDataModule
    from .train import _sha256, fit_or_reuse

    cfg = method.config
    check_window(cfg, train.pairs_key().get("half_window") if train.family == "mapping" else None)
    if getattr(cfg, "from_checkpoint", None):
        import json
        from pathlib import Path

        path = Path(cfg.from_checkpoint)
        if not path.exists():
            raise SettingError(f"from_checkpoint: {path} does not exist")
        saved = torch.load(path, map_location="cpu", weights_only=False)
        learner = make(saved["norm"])
        try:
            learner.net.load_state_dict(saved["state_dict"])
        except RuntimeError:
            raise SettingError(f"from_checkpoint: {path} holds a network with other settings than this run's; "
                             "pass the --param values it was trained with") from None
        record_path = path.with_name("record.json")
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        record.update(from_checkpoint=str(path), checkpoint_sha256=_sha256(path), reused=True)
        return learner.to(method.device).eval(), record
    method.context = {**method.context, "pairs": {"train": train.pairs_key(), "val": val.pairs_key()}}
    # a mapping method's half_window (when a training setting) is the window its inputs read
    window = (cfg.half_window if train.family == "mapping" and hasattr(cfg, "half_window")
              and "half_window" not in getattr(method, "inference_settings", ()) else None)
    data = lambda: PairsDataModule(train, val, cfg.batch_size, method.seed, cfg.max_samples, cfg.augment,  # noqa: E731
                                   window, getattr(cfg, "shift", False))
    files = [method_files] if isinstance(method_files, str) else list(method_files)
    return fit_or_reuse(method, make, data, extra_files=files)


def predict_learned(method, problem, days_per_batch: int = 32, first_guess=None):
    """The prediction Dataset of a trained learned method on a test problem; ``first_guess`` (T, *grid): a map
    per output day for a mapping learner trained to correct one."""
    from dataclasses import replace

    learner = method.learner.to(problem.obs.values.device if hasattr(problem, "obs") else method.device).eval()
    with torch.no_grad():
        if not hasattr(problem, "background"):
            maps = []
            for start in range(0, len(problem.times), days_per_batch):
                sub = replace(problem, times=problem.times[start:start + days_per_batch])
                w = sub.windows(method.config.half_window)
                if first_guess is not None:
                    w = replace(w, first_guess=first_guess[start:start + days_per_batch].to(w.device))
                maps.append(learner.field(w))
            return problem.result(torch.cat(maps))
        return problem.result(learner.analysis(problem))
