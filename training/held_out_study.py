"""What the held-out studies share (averaging_study, q_average_study): a run trained as
`make train` trains, on the training set less a held-out slice, stepped from one measured
point to the next; and their command line, which runs one seed of a preset and keeps its rows
as JSON, or prints several studies' JSON as one table."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import torch

from infogan import defaults
from infogan.contract import InfoganError
from infogan.training.config import TrainConfig
from infogan.training.train import Run, set_up, train_step


def held_out_run(cfg: TrainConfig) -> Run:
    """A fresh run of cfg (which sets a holdout) in a folder of its own; nothing is logged."""
    return set_up(cfg, Path(tempfile.mkdtemp(prefix="held-out-study-")), progress=False, resumed=False)


def measured_steps(run: Run, every: int, after_update: Callable[[], None]) -> Iterator[int]:
    """Train run to its end, calling after_update() after each update; yields the step every
    `every` updates and at the last one (a caller that measures in eval mode puts G and D back in train mode)."""
    cfg = run.cfg
    device = next(run.g.parameters()).device
    while run.step < cfg.total_steps:
        train_step(cfg, run.g, run.d, run.opt_d, run.opt_g, run.stream.real(run.step),
                   run.stream.latent(run.step, device), run.autocast, run.stream.transforms(run.step, device))
        run.step += 1
        after_update()
        if run.step % every == 0 or run.step == cfg.total_steps:
            yield run.step


def main(doc: str, decays: list[float], study: Callable, table: Callable[[list[Path]], str]) -> None:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--preset", default=defaults.PRESET)
    ap.add_argument("--dataset", default=defaults.DATASET,
                    help="mnist or fashion-mnist: the preset's schedule for it (DATASET_PRESETS), its held-out slice and judge")
    ap.add_argument("--seed", type=int, default=defaults.SEED)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--holdout", type=int, default=10_000)
    ap.add_argument("--decays", type=float, nargs="+", default=decays)
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
    try:
        study(a.preset, a.seed, a.threads, a.holdout, a.decays, a.every, a.out, a.epochs, a.data_dir, a.dataset)
    except InfoganError as e:  # a bad setting (holdout, preset, dataset, data): one line, not a traceback
        ap.exit(2, f"error: {e}\n")
