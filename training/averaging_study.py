"""Which generator to publish: the latest weights or their moving average, at which decay?

One run of a preset trains as `make train` does (averaging never changes training), on the
training set less a held-out slice; every `--every` updates the live G and each average are
judged side by side: purity, slant and fidelity against the held-out slice (never the test
set), the floor being as many other training images against it. Categories are named by the
encoder the run publishes (with the preset's q_ema_decay, D-and-Q's moving average, updated as
`make train` updates it), so purity reads as a run's own evaluation does; Q's accuracy on the
slice is that encoder's, the same for every arm. A study's JSON names that encoder ("encoder");
studies written without the key named categories by the live Q.

    python -m infogan.training.averaging_study --seed 0 --threads 1 --out runs/study/averaging-s0.json
    python -m infogan.training.averaging_study --table runs/study/averaging-s*.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from infogan import defaults
from infogan.files import write_atomic
from infogan.training.average import GeneratorAverage, calibrate_generator
from infogan.training.config import resolve
from infogan.training.evaluate import evaluate_models
from infogan.training.judge import generation_quality
from infogan.training.held_out_study import held_out_run, main, measured_steps


def summary(gen: dict) -> dict:
    return {"purity_mean": gen["purity_mean"], "purity_worst": min(gen["purity_per_category"]),
            "digits": gen["digits_generated"], "slant": max(abs(c["slant_spearman"]) for c in gen["codes"]),
            "fidelity": gen["fidelity"]["ratio"]}


def study(preset: str, seed: int, threads: int, holdout: int, decays: list[float], every: int, out: Path,
          epochs: int | None = None, data_dir: str = defaults.DATA_DIR, dataset: str = defaults.DATASET) -> list[dict]:
    cfg = resolve(preset, seed=seed, threads=threads, holdout=holdout, epochs=epochs, data_dir=data_dir,
                  dataset=dataset)
    run = held_out_run(cfg)
    averages = {d: GeneratorAverage(run.g, d) for d in decays}
    encoder = f"average {cfg.q_ema_decay}" if run.d_average is not None else "live"

    def after_update() -> None:
        for avg in averages.values():
            avg.update(run.g)
        if run.d_average is not None:  # the published encoder, as train() keeps it
            run.d_average.update(run.d)

    rows, start = [], time.time()
    for _ in measured_steps(run, every, after_update):
        ev, _ = evaluate_models(run.g, run.published_discriminator(), run.test_images, run.test_labels, run.label_names,
                                cfg.dataset, run.step, cfg.images_seen(run.step), run.calibration_images)
        arms = {"live": run.g, "live, batch norm measured again": calibrate_generator(run.g)}
        arms.update({f"average {d}": avg.calibrated() for d, avg in averages.items()})
        for name, g in arms.items():
            row = {"seed": seed, "step": run.step, "arm": name, "q_accuracy": ev["accuracy"],
                   **summary(generation_quality(g, cfg.template, ev["category_to_label"], run.judge))}
            rows.append(row)
            print(json.dumps(row), flush=True)
        run.g.train()
        print(f"step {run.step}/{cfg.total_steps}, {(time.time() - start) / 60:.1f} min", flush=True)
        write_atomic(out, json.dumps({"preset": preset, "dataset": dataset, "seed": seed, "threads": threads, "holdout": holdout,
                                      "encoder": encoder, "floor": run.judge.fidelity_reference.floor, "rows": rows}, indent=1))
    return rows


def table(paths: list[Path]) -> str:
    """The studies' rows as one markdown table: a row per (seed, updates, arm)."""
    head = ("| seed | updates | generator | fidelity (x floor) | purity mean | purity worst | classes drawn | slant | Q accuracy |\n"
            "|--:|--:|---|--:|--:|--:|--:|--:|--:|")
    lines = [head]
    for path in paths:
        for r in json.loads(Path(path).read_text())["rows"]:
            lines.append(f"| {r['seed']} | {r['step']:,} | {r['arm']} | {r['fidelity']:.2f} | {r['purity_mean']:.1%} | "
                         f"{r['purity_worst']:.0%} | {r['digits']}/10 | {r['slant']:.2f} | {r['q_accuracy']:.2%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(__doc__, [0.99, 0.995, 0.999], study, table)
