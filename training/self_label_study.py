"""Self-labelling after training, as a held-out study: does Q gain from its own confident categories?

SCAN's self-labelling step (Van Gansbeke et al. 2020) with FixMatch's confidence threshold
(Sohn et al. 2020): Q's category of a real image, where Q is at least `threshold` sure of it,
becomes the target for a strong affine transform of that image (cross-entropy weighted so every
category counts equally). Q also keeps reading G's codes from G's images (the information loss, G
frozen), so the categories stay those of G's codes and the generator half does not change at all.
It continues a finished run's D and D's Adam (the run's rates falling linearly to zero), on a copy:
the run folder is never written. Held-out runs only (a run trained with --holdout): a recipe is
chosen without looking at the test set.

    python -m infogan.training.self_label_study runs/<held-out run> --steps 500 --out study.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from infogan import defaults
from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, InfoganError
from infogan.files import write_atomic
from infogan.training.augment import random_affine
from infogan.training.config import TrainConfig
from infogan.training.evaluate import evaluate
from infogan.training.losses import info_loss
from infogan.training.train import Run, set_up

# the strong transform of the real image Q must classify like the untransformed one
STRONG = {"degrees": 25.0, "scale": (0.8, 1.2), "shift_px": 3.0}


def open_copy(run_dir: Path, threads: int) -> Run:
    """The finished held-out run, resumed from a copy of its checkpoint (no judge)."""
    if not (run_dir / defaults.CHECKPOINT_FILE).is_file():
        raise InfoganError(f"run={run_dir} holds no checkpoint.pt: pass a finished run folder")
    cfg = TrainConfig.load(run_dir / defaults.RUN_CONFIG_FILE)
    if not cfg.holdout:
        raise InfoganError(f"run={run_dir} was evaluated on the test set (holdout=0): the study chooses a recipe, "
                           "so it reads only runs trained with --holdout")
    copy = Path(tempfile.mkdtemp(prefix="self-label-study-"))
    for name in (defaults.RUN_CONFIG_FILE, defaults.CHECKPOINT_FILE):
        shutil.copy(run_dir / name, copy / name)
    cfg.judge, cfg.threads = False, threads
    try:
        return set_up(cfg, copy, progress=False, resumed=True)
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise


def self_label_step(run: Run, step: int, threshold: float, generator: torch.Generator) -> float:
    """One update of D-and-Q; returns the share of the batch Q was sure enough of to train on."""
    cfg, d, t = run.cfg, run.d, run.cfg.template
    real = run.stream.real(step)
    strong = random_affine(real, generator, **STRONG)
    with torch.no_grad(), run.autocast():
        sure, target = torch.softmax(d(real)[1].float(), 1).max(1)
    kept = sure > threshold
    counts = torch.bincount(target[kept], minlength=t.categorical_dim).float()
    weight = kept.sum() / (counts.clamp_min(1) * t.categorical_dim)  # every category counts equally
    with run.autocast():
        strong_logits = d(strong)[1]
    loss = (F.cross_entropy(strong_logits.float(), target, weight=weight, reduction="none") * kept).sum()
    loss = loss / kept.sum().clamp_min(1)
    latent = run.stream.latent(step, real.device)
    with torch.no_grad(), run.autocast():
        fake = run.published_generator()(latent[NOISE], latent[CATEGORICAL], latent[CONTINUOUS])
    with run.autocast():
        _, q_cat, q_cont = d(fake)
    info, _ = info_loss(t, q_cat.float(), q_cont.float(), latent[CATEGORICAL].argmax(1), latent[CONTINUOUS],
                        cfg.lambda_cat, cfg.lambda_cont)
    run.opt_d.zero_grad(set_to_none=True)
    (loss + info).backward()
    run.opt_d.step()
    return float(kept.float().mean())


def study(run_dir: Path, steps: int, every: int, threshold: float, threads: int, out: Path | None) -> list[dict]:
    """Q's held-out accuracy before and every `every` self-labelling updates; the rows, also in out."""
    for name, value in (("steps", steps), ("every", every)):
        if value <= 0:
            raise InfoganError(f"{name}={value} is invalid: must be > 0")
    if not 0 < threshold < 1:
        raise InfoganError(f"threshold={threshold} is invalid: must be in (0, 1)")
    run = open_copy(Path(run_dir), threads)
    run.published_generator().eval()
    rates = [group["lr"] for group in run.opt_d.param_groups]
    generator = torch.Generator().manual_seed(run.cfg.seed)
    rows, sure = [], None
    try:
        for i in range(steps + 1):
            if i % every == 0 or i == steps:
                ev, _ = evaluate(run.d, run.test_images, run.test_labels, run.label_names, run.calibration_images)
                run.d.train()
                rows.append({"updates": i, "q_accuracy": ev["accuracy"], "own": ev["labels_with_own_category"],
                             "transform_agreement": ev["transform_agreement"], "share_sure": sure})
                if out is not None:
                    write_atomic(out, json.dumps({"run": str(run_dir), "seed": run.cfg.seed, "threshold": threshold,
                                                  "strong": STRONG, "rows": rows}, indent=2))
            if i == steps:
                break
            for group, rate in zip(run.opt_d.param_groups, rates):
                group["lr"] = rate * (1 - i / steps)
            sure = self_label_step(run, run.step + i, threshold, generator)
    finally:
        shutil.rmtree(run.dir, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished run trained with --holdout")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=0.99)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        for row in study(a.run, a.steps, a.every, a.threshold, a.threads, a.out):
            print(json.dumps(row), flush=True)
    except InfoganError as e:
        ap.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
