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

import json
import time
from pathlib import Path

from infogan import defaults
from infogan.files import write_atomic
from infogan.training.average import WeightAverage
from infogan.training.config import resolve
from infogan.training.evaluate import evaluate
from infogan.training.held_out_study import held_out_run, main, measured_steps


def score(ev: dict) -> dict:
    return {"q_accuracy": ev["accuracy"], "own": ev["labels_with_own_category"], "n_labels": len(ev["label_names"]),
            "transform_agreement": ev["transform_agreement"], "category_share_max": ev["category_share_max"]}


def study(preset: str, seed: int, threads: int, holdout: int, decays: list[float], every: int, out: Path,
          epochs: int | None = None, data_dir: str = defaults.DATA_DIR, dataset: str = defaults.DATASET) -> list[dict]:
    # the judge reads generated images, which this study does not look at
    cfg = resolve(preset, seed=seed, threads=threads, holdout=holdout, epochs=epochs, judge=False,
                  data_dir=data_dir, dataset=dataset)
    run = held_out_run(cfg)
    averages = {d: WeightAverage(run.d, d) for d in decays}
    rows, start = [], time.time()
    for _ in measured_steps(run, every, lambda: [avg.update(run.d) for avg in averages.values()]):
        arms = {"live": run.d, **{f"average {d}": avg.module for d, avg in averages.items()}}
        for name, d in arms.items():
            ev, _ = evaluate(d, run.test_images, run.test_labels, run.label_names, run.calibration_images)
            row = {"seed": seed, "step": run.step, "arm": name, **score(ev)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        run.d.train()
        print(f"step {run.step}/{cfg.total_steps}, {(time.time() - start) / 60:.1f} min", flush=True)
        write_atomic(out, json.dumps({"preset": preset, "dataset": dataset, "seed": seed, "threads": threads, "holdout": holdout,
                                      "rows": rows}, indent=1))
    return rows


def table(paths: list[Path]) -> str:
    """The studies' rows as one markdown table: a row per (seed, updates, arm)."""
    lines = ["| seed | updates | Q | Q accuracy (held-out) | classes with own category | transform agreement | largest category |",
             "|--:|--:|---|--:|--:|--:|--:|"]
    for path in paths:
        for r in json.loads(Path(path).read_text())["rows"]:
            labels = r.get("n_labels", 10)  # rows written before it was recorded: digits
            lines.append(f"| {r['seed']} | {r['step']:,} | {r['arm']} | {r['q_accuracy']:.2%} | {r['own']}/{labels} | "
                         f"{r['transform_agreement']:.1%} | {r['category_share_max']:.1%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(__doc__, [0.99, 0.999], study, table)
