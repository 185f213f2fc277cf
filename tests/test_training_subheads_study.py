"""The sub-heads study reads every head of a run's published encoder: Q's own head scores exactly what
the run's evaluation scored, and IIC's label-free pick is the head with the most information."""

import json
import subprocess
import sys

from infogan.training.checkpoint import load_checkpoint, save_checkpoint
from infogan.training.config import resolve
from infogan.training.subheads_study import study
from infogan.training.train import train


def test_every_head_is_scored_q_first_as_the_runs_evaluation_scored_it(tmp_path, data_dir):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), lambda_real=0.5, subheads=3, judge=False)
    run = train(cfg, progress=False)
    rows = study(run)
    assert [r["head"] for r in rows] == ["Q", "sub 1", "sub 2"]
    assert rows[0]["accuracy"] == json.loads((run / "evaluation.json").read_text())["accuracy"]
    assert rows[0]["agrees_with_q"] == 1.0
    picked = [r for r in rows if r.get("picked")]
    assert len(picked) == 1 and picked[0]["information"] == max(r["information"] for r in rows)
    # a checkpoint from before the end has no calibrated encoder: the live one, calibrated as evaluation does
    # (the smoke preset publishes the live encoder, so its score is the run's own)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    del ckpt["discriminator_calibrated"]
    save_checkpoint(run / "checkpoint.pt", {k: v for k, v in ckpt.items() if k != "format_version"})
    assert study(run)[0]["accuracy"] == rows[0]["accuracy"]
    done = subprocess.run([sys.executable, "-m", "infogan.training.subheads_study", str(run)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.count(f"| {run.name} |") == 3


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "infogan.training.subheads_study", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        f"error: run={tmp_path} is not a run directory (no config.json)"]
