"""Run folders: make a new one, point runs/latest at it, find and re-evaluate finished ones."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch

from infogan import defaults
from infogan.contract import InfoganError
from infogan.files import write_atomic
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.config import TrainConfig
from infogan.training.data import UNRECORDED_DATASET, dataset_spec, evaluation_split
from infogan.training.average import CALIBRATION_IMAGES
from infogan.training.evaluate import calibrate_batchnorm, evaluate_models, save_evaluation
from infogan.training.images import as_float_images
from infogan.training.judge import load_or_train_judge
from infogan.training.metrics_log import read_metrics


def new_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = cfg.run_name or f"{cfg.dataset}-{cfg.preset}-s{cfg.seed}-{stamp}"
    run = Path(cfg.out_dir) / name
    if (run / defaults.CHECKPOINT_FILE).exists():
        raise InfoganError(f"run_name={name!r} already holds a run: pass --resume to continue it, or another name")
    (run / defaults.SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    return run


def point_latest(run: Path) -> None:
    latest = run.parent / defaults.LATEST
    tmp = run.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.name)
    os.replace(tmp, latest)


def rewind_metrics(path: Path, step: int) -> None:
    """On resume, drop rows logged after the checkpoint so the log reads as one run.
    The shorter log replaces the old one by rename: a crash or a full disk mid-write
    leaves the whole old log, which the next resume rewinds again."""
    if path.exists():
        rows = [r for r in read_metrics(path) if r["step"] <= step]
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


def resolve_run(run: str | Path) -> Path:
    run = Path(run)
    if not (run / defaults.CHECKPOINT_FILE).is_file():
        raise InfoganError(f"run={run} holds no checkpoint.pt: train first (make train) or pass runs/<name>")
    return run.resolve()


def run_holdout(run: str | Path) -> int:
    """The held-out training images a run was trained without and is evaluated on, from its
    config.json (0: it is evaluated on the test set; also for a folder without a config)."""
    config = Path(run) / defaults.RUN_CONFIG_FILE
    return TrainConfig.load(config).holdout if config.is_file() else 0


def evaluate_run(run: str | Path, data_dir: str | Path = defaults.DATA_DIR, judge: bool = True,
                 device: str | torch.device | None = None) -> dict:
    """Re-evaluate a run on its whole evaluation set and save evaluation.json: Q as a
    classifier, and (judge=True) the generator half, read by a supervised CNN. The evaluation
    set is the test set, or for a run trained with --holdout its held-out slice (fidelity
    measured against it too), so a held-out run's evaluation never reads the test set.
    The models and images go to `device` (CUDA where torch sees it); the judge stays on the CPU."""
    run = resolve_run(run)
    ckpt = load_checkpoint(run / defaults.CHECKPOINT_FILE)
    config = ckpt.get("config", {})
    dataset, holdout = config.get("dataset", UNRECORDED_DATASET), int(config.get("holdout", 0))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    g, d = (m.to(device) for m in build_models(ckpt))
    _, images, labels = evaluation_split(data_dir, dataset, holdout)
    x = as_float_images(images, device)
    ev, _ = evaluate_models(g, d, x, labels, list(dataset_spec(dataset).label_names), dataset, ckpt["step"],
                            ckpt["images_seen"],
                            judge=load_or_train_judge(data_dir, dataset, holdout=holdout) if judge else None)
    save_evaluation(run, ev)
    return ev


def published_models(run: Path) -> tuple[TrainConfig, torch.nn.Module, torch.nn.Module, torch.Tensor, np.ndarray]:
    """A run folder's config, published G and encoder (at a checkpoint before the run's end,
    the live D-and-Q with batch norm measured on the first real training images, as evaluation scores the
    live encoder), and the images it was evaluated on ([N, 1, 28, 28] floats) with their labels: what the
    studies of a finished or running run read."""
    if not (run / defaults.RUN_CONFIG_FILE).is_file():
        raise InfoganError(f"run={run} is not a run directory (no config.json)")
    cfg = TrainConfig.load(run / defaults.RUN_CONFIG_FILE)
    ckpt = load_checkpoint(run / defaults.CHECKPOINT_FILE)
    g, d = build_models(ckpt)
    train_u8, eval_u8, labels = evaluation_split(cfg.data_dir, cfg.dataset, cfg.holdout, cfg.train_subset, cfg.eval_subset)
    if "discriminator_calibrated" not in ckpt:
        d = calibrate_batchnorm(d, as_float_images(train_u8[:CALIBRATION_IMAGES]))
    return cfg, g, d, as_float_images(eval_u8), labels


def study_command(description: str, study, table, runs_help: str, argv: list[str] | None = None) -> None:
    """The command line of a study that reads run folders (`python -m ... RUN...`): `study(run)` gives rows
    for each run, `table(rows)` prints them all; a folder that is not a run is one line, no traceback."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("runs", nargs="+", type=Path, help=runs_help)
    args = parser.parse_args(argv)
    try:
        rows = [row for run in args.runs for row in study(run)]
    except InfoganError as e:
        sys.exit(f"error: {e}")
    print(table(rows))
