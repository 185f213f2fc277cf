"""The one place a training run logs: JSON lines in the run folder, and a progress bar."""

from __future__ import annotations

import json
import time
from pathlib import Path

from infogan.training.config import TrainConfig


class MetricsLog:
    """JSON lines to the run's metrics.jsonl (a train row every `every` steps, an eval row per
    evaluation), and a rich progress bar when enabled."""

    def __init__(self, path: Path, cfg: TrainConfig, progress: bool, every: int = 10):
        self.path, self.cfg, self.every, self.enabled = path, cfg, every, progress
        self.sums: dict[str, float] = {}
        self.n, self.t0, self.t_last, self.images_last = 0, time.perf_counter(), time.perf_counter(), None
        self.bar = self.task = None
        self.last_acc = float("nan")

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TimeRemainingColumn(), TextColumn("{task.description}"))
            self.bar.__enter__()
            self.task = self.bar.add_task("", total=self.cfg.total_steps)
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def state(self) -> dict:
        """The window of steps not yet logged (kept in checkpoints, so a resumed run logs
        the same rows as one never interrupted)."""
        return {"sums": dict(self.sums), "n": self.n}

    def restore(self, state: dict | None) -> None:
        if state:
            self.sums, self.n = dict(state["sums"]), int(state["n"])

    def _write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def step(self, step: int, out: dict) -> None:
        for k, v in out.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.n += 1
        if step % self.every and step != self.cfg.total_steps:
            return
        now = time.perf_counter()
        row = {"kind": "train", "step": step, "images_seen": step * self.cfg.batch_size,
               **{k: v / self.n for k, v in self.sums.items()},
               "images_per_s": self.n * self.cfg.batch_size / (now - self.t_last), "elapsed_s": now - self.t0}
        self._write(row)
        self.sums, self.n, self.t_last = {}, 0, now
        if self.bar is not None:
            self.bar.update(self.task, completed=step, description=(
                f"D {row['loss_d']:.3f}  G {row['loss_g']:.3f}  L_I {row['l_i']:.3f}/{self.cfg.template.entropy():.3f}"
                f"  acc {100 * self.last_acc:.1f}%  {row['images_per_s']:.0f} img/s"))

    def evaluation(self, step: int, ev: dict) -> None:
        self.last_acc = ev["accuracy"]
        row = {"kind": "eval", "step": step, "images_seen": step * self.cfg.batch_size,
               "elapsed_s": time.perf_counter() - self.t0,
               **{k: ev[k] for k in ("accuracy", "labels_with_own_category", "category_share_max", "category_to_label",
                                      "transform_agreement", "transform_agreement_min")}}
        if "generation" in ev:
            gen = ev["generation"]
            row.update({"purity": gen["purity_mean"], "digits_generated": gen["digits_generated"],
                        "digit_kept": [c["digit_kept"] for c in gen["codes"]],
                        "slant_corr": [c["slant_corr"] for c in gen["codes"]],
                        "width_corr": [c["width_corr"] for c in gen["codes"]]})
        self._write(row)
