"""Run under torchrun by tests/test_training_distributed.py: one training run, then
each rank saves the weights it holds (rank<r>.pt in the run folder), so the test
can compare the ranks with each other and with a single process.

    torchrun --nproc-per-node 2 tests/distributed_worker.py <out_dir> <run_name> <epochs> [--resume] [--steps N]
"""

import os
import sys
from pathlib import Path

import torch

import infogan.training.train as training
from infogan.training.config import resolve

out_dir, run_name, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
resume = "--resume" in sys.argv
steps = {"steps_per_epoch": int(sys.argv[sys.argv.index("--steps") + 1])} if "--steps" in sys.argv else {}
loop = training._loop


def loop_then_save(run):
    calibrated = loop(run)
    torch.save({"g": run.g.state_dict(), "d": run.d.state_dict(), "step": run.step},
               run.dir / f"rank{run.world.rank}.pt")
    return calibrated


training._loop = loop_then_save
data_dir = os.environ.get("INFOGAN_DATA_DIR", str(Path(__file__).resolve().parents[1] / "data"))
cfg = resolve("smoke", data_dir=data_dir, out_dir=out_dir, run_name=run_name,
              epochs=epochs, precision="fp32", **steps)
if resume:
    training.train(cfg, resume=Path(out_dir) / run_name, progress=False, epochs=epochs)
else:
    training.train(cfg, progress=False)
