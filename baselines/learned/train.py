"""Training, checkpoint reuse and the training record of the learned methods (PyTorch Lightning).

``LearnedConfig``: the settings every learned method has. ``fit_or_reuse``:

* key = sha256 of the method's name and configuration (``retrain`` and the
  method's ``inference_settings``, e.g. DiffDA's sampler, aside), the
  source of ``baselines/learned`` and of the method's file, the dataset's
  fingerprint, the training pairs' identity (``Split.pairs_key`` of train and
  val: the variants of a density sweep, and a forecast challenge sharing its
  DA cases, share one model), the size, seed and number of devices; the model is
  saved under ``runs/checkpoints/<key>/`` (``model.pt``: weights, normaliser,
  network settings; ``record.json``: how it was trained) and reused when the key
  matches, unless ``retrain``;
* otherwise a Lightning ``Trainer`` with ``accelerator="auto"`` (the GPU when
  there is one), ``devices`` (more than one: DDP, spawned processes, gloo on
  CPU and NCCL on GPU; the same code path), ``bf16-mixed`` precision on GPU
  and 32-bit on CPU, early stopping on the val loss, a ``ModelCheckpoint`` of
  the best val loss (its weights are the ones kept), a ``CSVLogger`` under
  ``runs/<challenge>/<size>/<method>/logs/``, the progress bar, a wall-time
  limit, seeded;
* the record: epochs, best val loss, the val curve, parameter count, training
  wall time, hardware, devices, precision, the data module's description and
  the checkpoint's sha256; it goes into the results JSON.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import lazy_loader as lazy

from ..base import Config

torch = lazy.load("torch")

CHECKPOINTS = Path("runs") / "checkpoints"


@dataclass
class LearnedConfig(Config):
    max_epochs: int = 60
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: early stopping: epochs without a better val loss
    patience: int = 10
    #: a wall-clock limit on training (minutes; None: no limit)
    max_minutes: float | None = 20.0
    #: processes (CPU) or GPUs; > 1 runs Lightning DDP
    devices: int = 1
    #: train even if a matching checkpoint exists
    retrain: bool = False
    #: train and validate on at most this many samples (seeded subset; None: all)
    max_samples: int | None = None
    #: mirror half the training samples by the world's symmetry, if it declares one (QG: north-south); on
    #: by default: it lowered the best val loss and the test error of the qg-da U-Net and DiffDA (README)
    augment: bool = True
    #: translate every training sample by a random periodic shift (whole grid cells), if the world declares
    #: its translations (QG); off by default (see README, qg-map)
    shift: bool = False


#: the stack's files whose code decides a trained model (a method adds its own file)
CORE = ("data.py", "features.py", "learners.py", "module.py", "train.py", "nets")


def code_version(extra_files=()) -> str:
    """sha256 of the learned stack's source files (``CORE``) and ``extra_files`` (the method's own files)."""
    root = Path(__file__).resolve().parent
    files = sorted(f for name in CORE for f in ([root / name] if name.endswith(".py") else sorted((root / name).rglob("*.py"))))
    files += [Path(f) for f in extra_files]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def checkpoint_key(method, extra_files=()) -> str:
    skip = {"retrain", *getattr(method, "inference_settings", ())}
    cfg = {k: v for k, v in asdict(method.config).items() if k not in skip}
    ctx = method.context
    blob = json.dumps({"method": method.name, "config": cfg, "code": code_version(extra_files),
                       "data": ctx.get("data_fingerprint"), "pairs": ctx.get("pairs"), "size": ctx.get("size"),
                       "seed": method.seed}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _hardware(accelerator: str, devices: int) -> dict:
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    out = {"cpu": cpu, "torch_threads": torch.get_num_threads(), "accelerator": accelerator, "devices": devices}
    if accelerator == "gpu":
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fit_or_reuse(method, make_learner, datamodule_factory, extra_files=()) -> tuple:
    """(trained ``Learner``, record): reuse a matching checkpoint or train one (see module doc).

    ``make_learner(norm)`` builds an untrained learner from a normaliser (or from the saved
    one when reusing); ``datamodule_factory()`` the data module, whose ``normaliser`` is fit
    on the train split.
    """
    import pytorch_lightning as pl

    from data_scripts.atomic import transaction

    cfg = method.config
    key = checkpoint_key(method, extra_files)
    ckdir = CHECKPOINTS / key
    model_path, record_path = ckdir / "model.pt", ckdir / "record.json"
    if model_path.exists() and record_path.exists() and not cfg.retrain:
        saved = torch.load(model_path, map_location="cpu", weights_only=False)
        learner = make_learner(saved["norm"])
        learner.net.load_state_dict(saved["state_dict"])
        record = json.loads(record_path.read_text())
        record.update(reused=True, checkpoint=str(model_path), checkpoint_sha256=_sha256(model_path))
        return learner.to(method.device).eval(), record

    pl.seed_everything(method.seed, workers=True, verbose=False)
    dm = datamodule_factory()
    learner = make_learner(dm.normaliser)
    gpu = torch.cuda.is_available() and str(method.device).startswith("cuda")
    accelerator = "gpu" if gpu else "cpu"
    devices = int(cfg.devices)
    precision = "bf16-mixed" if gpu else "32-true"
    workdir = Path(method.context.get("workdir", Path("runs") / "learned"))
    ckpt_cb = pl.callbacks.ModelCheckpoint(dirpath=str(ckdir / "lightning"), monitor="val_loss", mode="min",
                                           save_top_k=1, filename="best")
    callbacks = [ckpt_cb, pl.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=int(cfg.patience))]
    logger = pl.loggers.CSVLogger(save_dir=str(workdir), name="logs", version=key[:12])
    trainer = pl.Trainer(accelerator=accelerator, devices=devices,
                         strategy="ddp_spawn" if devices > 1 else "auto", precision=precision,
                         max_epochs=int(cfg.max_epochs), callbacks=callbacks, logger=logger,
                         enable_progress_bar=method.progress, enable_model_summary=False, deterministic="warn",
                         max_time={"minutes": cfg.max_minutes} if cfg.max_minutes else None,
                         log_every_n_steps=1, num_sanity_val_steps=0)
    t0 = time.perf_counter()
    trainer.fit(learner, datamodule=dm)
    wall = time.perf_counter() - t0
    best = ckpt_cb.best_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        learner.load_state_dict(state)
    curve = _curve(Path(logger.log_dir) / "metrics.csv", "val_loss")
    # from the log: with DDP the main process's callback does not hold the score, only the best path
    record = {"epochs": len(curve), "best_val_loss": min(v for _, v in curve) if curve else None, "val_curve": curve,
              "train_curve": _curve(Path(logger.log_dir) / "metrics.csv", "train_loss"),
              "parameters": int(sum(p.numel() for p in learner.net.parameters() if p.requires_grad)),
              "train_seconds": round(wall, 1), "hardware": _hardware(accelerator, devices), "precision": precision,
              "strategy": "ddp_spawn" if devices > 1 else "single process", "data": dm.describe(),
              "stopped_by": _stop_reason(trainer, cfg, len(curve)), "logs": str(Path(logger.log_dir)), "key": key}
    ckdir.mkdir(parents=True, exist_ok=True)
    with transaction() as tx:
        torch.save({"state_dict": learner.net.state_dict(), "norm": learner.norm}, tx.stage(model_path))
        tx.stage(record_path).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    record.update(reused=False, checkpoint=str(model_path), checkpoint_sha256=_sha256(model_path))
    return learner.to(method.device).eval(), record


def _curve(path: Path, column: str) -> list:
    """[(epoch, value)] of a per-epoch metric from the CSV log."""
    import csv

    if not path.exists():
        return []
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get(column):
                out[int(row["epoch"])] = round(float(row[column]), 6)
    return sorted(out.items())


def _stop_reason(trainer, cfg, epochs: int) -> str:
    if epochs >= cfg.max_epochs:
        return "max_epochs"
    es = [c for c in trainer.callbacks if isinstance(c, __import__("pytorch_lightning").callbacks.EarlyStopping)]
    if es and es[0].stopped_epoch:
        return f"early stopping at epoch {es[0].stopped_epoch}"
    return "time limit" if cfg.max_minutes else "finished"


def threads_note() -> str:
    return f"{torch.get_num_threads()} torch thread(s), OMP {os.environ.get('OMP_NUM_THREADS', 'unset')}"
