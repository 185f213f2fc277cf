"""The one place a training run logs: JSON lines in the run folder, and progress:
a bar on a terminal, plain lines in a log (a file, a pipe, CI), and always in the
run's progress.log."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from infogan.training.config import TrainConfig

PROGRESS_LINES = 50  # plain progress lines over a run: one every 2% (a step per row at least)
METRICS_FILE = "metrics.jsonl"  # in the run folder


def read_metrics(path: Path, kind: str | None = None) -> list[dict]:
    """The rows a MetricsLog wrote to `path` (a metrics.jsonl), in order; only those of
    `kind` ("train" or "eval") when given."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return rows if kind is None else [r for r in rows if r.get("kind") == kind]


def _duration(seconds: float) -> str:
    m, s = divmod(int(max(seconds, 0)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class MetricsLog:
    """JSON lines to the run's metrics.jsonl (a train row every `every` steps, an eval row per
    evaluation), and progress when enabled: a rich bar on a terminal, else a plain line every
    2% of the run; the plain lines also go to progress.log beside metrics.jsonl.

    A step's figures stay tensors on the training device until a row is written: reading
    one back is a host synchronisation, which on a GPU would stall every step; a row
    reads the whole window back in one copy."""

    def __init__(self, path: Path, cfg: TrainConfig, progress: bool, every: int = 10, stream=None):
        self.path, self.cfg, self.every, self.enabled = path, cfg, every, progress
        self.stream = stream or sys.stdout
        self.progress_path = None if path == Path(os.devnull) else path.with_name("progress.log")
        self.sums: dict[str, float] = {}
        self.pending: list[dict] = []  # this window's step figures, not yet read back
        self.n, self.t0, self.t_last, self.images_last = 0, time.perf_counter(), time.perf_counter(), None
        self.bar = self.task = None
        self.last_acc = float("nan")
        self.lines_every = max(1, cfg.total_steps // PROGRESS_LINES)
        self.next_line = None  # the step from which the next plain line is due
        self.started_at = None  # (step, time) this process started training at, for the time left

    def __enter__(self):
        if self.enabled and self.stream.isatty():
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
        self._read_back()
        return {"sums": dict(self.sums), "n": self.n}

    def restore(self, state: dict | None) -> None:
        if state:
            self.sums, self.n = dict(state["sums"]), int(state["n"])

    def _write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def _read_back(self) -> None:
        """The pending steps' figures into the window's sums, in one device-to-host copy;
        summed in float64 in step order, exactly as reading each step at once would."""
        if not self.pending:
            return
        keys = list(self.pending[0])
        table = torch.stack([torch.stack([torch.as_tensor(o[k]).detach().to(torch.float64).reshape(()) for k in keys])
                             for o in self.pending]).cpu().tolist()
        for values in table:
            for k, v in zip(keys, values):
                self.sums[k] = self.sums.get(k, 0.0) + v
        self.pending = []

    def step(self, step: int, out: dict) -> None:
        self.pending.append(out)
        self.n += 1
        if self.started_at is None:
            self.started_at = (step - 1, time.perf_counter())
        if step % self.every and step != self.cfg.total_steps:
            return
        self._read_back()
        now = time.perf_counter()
        row = {"kind": "train", "step": step, "images_seen": self.cfg.images_seen(step),
               **{k: v / self.n for k, v in self.sums.items()},
               "images_per_s": self.n * self.cfg.batch_size / (now - self.t_last), "elapsed_s": now - self.t0}
        self._write(row)
        self.sums, self.n, self.t_last = {}, 0, now
        self._show(step, row, now)

    def _show(self, step: int, row: dict, now: float) -> None:
        losses = (f"D {row['loss_d']:.3f}  G {row['loss_g']:.3f}  "
                  f"L_I {row['l_i']:.3f}/{self.cfg.template.entropy():.3f}")
        if self.bar is not None:
            self.bar.update(self.task, completed=step, description=(
                f"{losses}  acc {100 * self.last_acc:.1f}%  {row['images_per_s']:.0f} img/s"))
        total = self.cfg.total_steps
        if self.next_line is None:  # the first row of this process: say where it starts
            self.next_line = step
        if step < self.next_line and step != total:
            return
        self.next_line = (step // self.lines_every + 1) * self.lines_every
        first, t_first = self.started_at
        left = (now - t_first) / max(step - first, 1) * (total - step)
        acc = "-" if self.last_acc != self.last_acc else f"{100 * self.last_acc:.1f}%"
        line = (f"train step {step:,}/{total:,} ({100 * step / total:.0f}%)  {row['images_per_s']:,.0f} img/s  "
                f"acc {acc}  {losses}  elapsed {_duration(now - self.t0)}  left {_duration(left)}")
        if self.progress_path is not None:
            with open(self.progress_path, "a") as f:
                f.write(line + "\n")
        if self.enabled and self.bar is None:
            print(line, file=self.stream, flush=True)

    def evaluation(self, step: int, ev: dict) -> None:
        self.last_acc = ev["accuracy"]
        row = {"kind": "eval", "step": step, "images_seen": self.cfg.images_seen(step),
               "elapsed_s": time.perf_counter() - self.t0,
               **{k: ev[k] for k in ("accuracy", "labels_with_own_category", "category_share_max", "category_to_label",
                                      "transform_agreement", "transform_agreement_min")}}
        if "encoder_live" in ev:  # with q_ema_decay: D-and-Q's latest weights, beside their average
            row["accuracy_live"] = ev["encoder_live"]["accuracy"]
        if "generation" in ev:
            gen = ev["generation"]
            row.update({"purity": gen["purity_mean"], "digits_generated": gen["digits_generated"],
                        "digit_kept": [c["digit_kept"] for c in gen["codes"]],
                        "slant_corr": [c["slant_corr"] for c in gen["codes"]],
                        "width_corr": [c["width_corr"] for c in gen["codes"]]})
            if "fidelity" in gen:
                row["fidelity_ratio"] = gen["fidelity"]["ratio"]
        self._write(row)
