"""Working with finished runs: find them, re-evaluate them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from infogan.contract import InfoganError
from infogan.files import write_atomic
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.data import dataset_spec, load_split
from infogan.training.evaluate import evaluate
from infogan.training.judge import generation_quality, load_or_train_judge


def resolve_run(run: str | Path) -> Path:
    run = Path(run)
    if not (run / "checkpoint.pt").is_file():
        raise InfoganError(f"run={run} holds no checkpoint.pt: train first (make train) or pass runs/<name>")
    return run.resolve()


def evaluate_run(run: str | Path, data_dir: str | Path = "data", judge: bool = True) -> dict:
    """Re-evaluate a run on the full test set and save evaluation.json: Q as a
    classifier, and (judge=True) the generator half, read by a supervised CNN."""
    run = resolve_run(run)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    dataset = ckpt.get("config", {}).get("dataset", "mnist")
    g, d = build_models(ckpt)
    images, labels = load_split(data_dir, dataset, "test")
    x = torch.from_numpy(images.copy()).float().div_(255.0)
    ev, _ = evaluate(d, x, labels, list(dataset_spec(dataset).label_names))
    ev.update({"dataset": dataset, "step": ckpt["step"], "images_seen": ckpt["images_seen"]})
    if judge:
        ev["generation"] = generation_quality(g, g.template, ev["category_to_label"], load_or_train_judge(data_dir, dataset))
    write_atomic(run / "evaluation.json", json.dumps(ev, indent=2))
    return ev
