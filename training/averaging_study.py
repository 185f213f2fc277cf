"""Which generator to publish: the latest weights or their moving average, at which decay?

One run of a preset trains as `make train` does (averaging never changes training), on the
training set less a held-out slice; every `--every` updates the live G and each average are
judged side by side: purity, slant and fidelity against the held-out slice (never the test
set), the floor being as many other training images against it. Q's accuracy on the slice is
the same for every arm.

    python -m infogan.training.averaging_study --seed 0 --threads 1 --out runs/study/averaging-s0.json
    python -m infogan.training.averaging_study --table runs/study/averaging-s*.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from infogan.files import write_atomic
from infogan.training.average import GeneratorAverage, calibrate_generator
from infogan.training.config import resolve
from infogan.training.evaluate import evaluate_models
from infogan.training.judge import generation_quality
from infogan.training.train import set_up, train_step


def summary(gen: dict) -> dict:
    return {"purity_mean": gen["purity_mean"], "purity_worst": min(gen["purity_per_category"]),
            "digits": gen["digits_generated"], "slant": max(abs(c["slant_spearman"]) for c in gen["codes"]),
            "fidelity": gen["fidelity"]["ratio"]}


def study(preset: str, seed: int, threads: int, holdout: int, decays: list[float], every: int, out: Path,
          epochs: int | None = None) -> list[dict]:
    cfg = resolve(preset, seed=seed, threads=threads, holdout=holdout, epochs=epochs)
    run = set_up(cfg, Path(tempfile.mkdtemp(prefix="averaging-study-")), progress=False, resumed=False)
    averages = {d: GeneratorAverage(run.g, d) for d in decays}
    device = next(run.g.parameters()).device
    rows, start = [], time.time()
    while run.step < cfg.total_steps:
        train_step(cfg, run.g, run.d, run.opt_d, run.opt_g, run.stream.real(run.step),
                   run.stream.latent(run.step, device), run.autocast, run.stream.transforms(run.step, device))
        run.step += 1
        for avg in averages.values():
            avg.update(run.g)
        if run.step % every and run.step != cfg.total_steps:
            continue
        ev, _ = evaluate_models(run.g, run.d, run.test_images, run.test_labels, run.label_names, cfg.dataset,
                                run.step, cfg.images_seen(run.step), run.calibration_images)
        arms = {"live": run.g, "live, batch norm measured again": calibrate_generator(run.g)}
        arms.update({f"average {d}": avg.calibrated() for d, avg in averages.items()})
        for name, g in arms.items():
            row = {"seed": seed, "step": run.step, "arm": name, "q_accuracy": ev["accuracy"],
                   **summary(generation_quality(g, cfg.template, ev["category_to_label"], run.judge))}
            rows.append(row)
            print(json.dumps(row), flush=True)
        run.g.train()
        print(f"step {run.step}/{cfg.total_steps}, {(time.time() - start) / 60:.1f} min", flush=True)
        write_atomic(out, json.dumps({"preset": preset, "seed": seed, "threads": threads, "holdout": holdout,
                                      "floor": run.judge.fidelity_reference.floor, "rows": rows}, indent=1))
    return rows


def table(paths: list[Path]) -> str:
    """The studies' rows as one markdown table: a row per (seed, updates, arm)."""
    head = ("| seed | updates | generator | fidelity (x floor) | purity mean | purity worst | digits | slant | Q accuracy |\n"
            "|--:|--:|---|--:|--:|--:|--:|--:|--:|")
    lines = [head]
    for path in paths:
        for r in json.loads(Path(path).read_text())["rows"]:
            lines.append(f"| {r['seed']} | {r['step']:,} | {r['arm']} | {r['fidelity']:.2f} | {r['purity_mean']:.1%} | "
                         f"{r['purity_worst']:.0%} | {r['digits']}/10 | {r['slant']:.2f} | {r['q_accuracy']:.2%} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--holdout", type=int, default=10_000)
    ap.add_argument("--decays", type=float, nargs="+", default=[0.99, 0.995, 0.999])
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=None, help="the preset's unless given")
    ap.add_argument("--out", type=Path, help="the study's JSON (rows written at every judged point)")
    ap.add_argument("--table", type=Path, nargs="+", help="print these studies' JSON as one markdown table instead")
    a = ap.parse_args()
    if a.table:
        print(table(a.table))
        return
    if a.out is None:
        ap.error("--out is required to run a study")
    torch.set_num_threads(a.threads or torch.get_num_threads())
    study(a.preset, a.seed, a.threads, a.holdout, a.decays, a.every, a.out, a.epochs)


if __name__ == "__main__":
    main()
