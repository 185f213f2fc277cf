"""Would Q classify better as a moving average of its weights? A study, not the recipe.

One run of a preset trains as `make train` does (averaging never changes training), on the
training set less a held-out slice; every `--every` updates Q's accuracy on that slice (never
the test set) is measured for the live D-and-Q and for moving averages of their weights at each
decay, side by side at equal updates. Q shares D's trunk, so the whole discriminator is
averaged; each arm's batch norm is measured again on the same real training images, as the
published encoder's is. The held-out labels score the arms; they never train or select weights
inside the run.

    python -m infogan.training.q_average_study --seed 0 --threads 1 --out runs/study/q-average-s0.json
    python -m infogan.training.q_average_study --table runs/study/q-average-s*.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from infogan import defaults
from infogan.files import write_atomic
from infogan.training.average import WeightAverage
from infogan.training.config import resolve
from infogan.training.evaluate import evaluate
from infogan.training.train import set_up, train_step


def score(ev: dict) -> dict:
    return {"q_accuracy": ev["accuracy"], "own": ev["labels_with_own_category"],
            "transform_agreement": ev["transform_agreement"], "category_share_max": ev["category_share_max"]}


def study(preset: str, seed: int, threads: int, holdout: int, decays: list[float], every: int, out: Path,
          epochs: int | None = None, data_dir: str = defaults.DATA_DIR) -> list[dict]:
    # the judge reads generated images, which this study does not look at
    cfg = resolve(preset, seed=seed, threads=threads, holdout=holdout, epochs=epochs, judge=False,
                 data_dir=data_dir)
    run = set_up(cfg, Path(tempfile.mkdtemp(prefix="q-average-study-")), progress=False, resumed=False)
    averages = {d: WeightAverage(run.d, d) for d in decays}
    device = next(run.g.parameters()).device
    rows, start = [], time.time()
    while run.step < cfg.total_steps:
        train_step(cfg, run.g, run.d, run.opt_d, run.opt_g, run.stream.real(run.step),
                   run.stream.latent(run.step, device), run.autocast, run.stream.transforms(run.step, device))
        run.step += 1
        for avg in averages.values():
            avg.update(run.d)
        if run.step % every and run.step != cfg.total_steps:
            continue
        arms = {"live": run.d, **{f"average {d}": avg.module for d, avg in averages.items()}}
        for name, d in arms.items():
            ev, _ = evaluate(d, run.test_images, run.test_labels, run.label_names, run.calibration_images)
            row = {"seed": seed, "step": run.step, "arm": name, **score(ev)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        run.d.train()
        print(f"step {run.step}/{cfg.total_steps}, {(time.time() - start) / 60:.1f} min", flush=True)
        write_atomic(out, json.dumps({"preset": preset, "seed": seed, "threads": threads, "holdout": holdout,
                                      "rows": rows}, indent=1))
    return rows


def table(paths: list[Path]) -> str:
    """The studies' rows as one markdown table: a row per (seed, updates, arm)."""
    lines = ["| seed | updates | Q | Q accuracy (held-out) | classes with own category | transform agreement | largest category |",
             "|--:|--:|---|--:|--:|--:|--:|"]
    for path in paths:
        for r in json.loads(Path(path).read_text())["rows"]:
            lines.append(f"| {r['seed']} | {r['step']:,} | {r['arm']} | {r['q_accuracy']:.2%} | {r['own']}/10 | "
                         f"{r['transform_agreement']:.1%} | {r['category_share_max']:.1%} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--holdout", type=int, default=10_000)
    ap.add_argument("--decays", type=float, nargs="+", default=[0.99, 0.999])
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=None, help="the preset's unless given")
    ap.add_argument("--data-dir", default=defaults.DATA_DIR)
    ap.add_argument("--out", type=Path, help="the study's JSON (rows written at every measured point)")
    ap.add_argument("--table", type=Path, nargs="+", help="print these studies' JSON as one markdown table instead")
    a = ap.parse_args()
    if a.table:
        print(table(a.table))
        return
    if a.out is None:
        ap.error("--out is required to run a study")
    torch.set_num_threads(a.threads or torch.get_num_threads())
    study(a.preset, a.seed, a.threads, a.holdout, a.decays, a.every, a.out, a.epochs, a.data_dir)


if __name__ == "__main__":
    main()
