"""A training run killed with SIGKILL in the middle of an epoch (a real process kill,
not an exception) resumes from its last checkpoint to the same weights, bit for bit,
as a run never interrupted, and its metrics log has every row once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from infogan.training.checkpoint import load_checkpoint
from infogan.training.config import resolve
from infogan.training.train import train

# 6 epochs of 15 updates on the smoke slice, a checkpoint at every epoch's end; metrics rows
# every 10 updates, so most rows (and the kill) fall inside an epoch
SETTINGS = dict(epochs=6, steps_per_epoch=15, checkpoint_every=1, eval_every=3, samples_every=6, threads=1)


def _config(data_dir, out_dir, name):
    return resolve("smoke", data_dir=str(data_dir), out_dir=str(out_dir), run_name=name, **SETTINGS)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, data_dir):
    straight = train(_config(data_dir, tmp_path, "straight"), progress=False)

    code = ("import sys; from infogan.training.config import resolve; from infogan.training.train import train; "
            f"train(resolve('smoke', data_dir={str(data_dir)!r}, out_dir={str(tmp_path)!r}, run_name='killed', "
            f"**{SETTINGS!r}), progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run, deadline = tmp_path / "killed", time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # into epoch 4, past three checkpoints
        rows = _rows(run) if (run / "metrics.jsonl").exists() else []
        if any(r["kind"] == "train" and r["step"] >= 50 for r in rows):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 45 <= done < 90 and done % 15 == 0  # a checkpoint from an epoch's end, not the final one

    resumed = train(resolve("smoke"), resume=run, progress=False)
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(resumed / "checkpoint.pt")
    for part in ("generator", "discriminator", "discriminator_calibrated"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert a["step"] == b["step"] == 90

    train_steps = [r["step"] for r in _rows(resumed) if r["kind"] == "train"]
    assert train_steps == list(range(10, 91, 10))  # every row once: none lost, none repeated
    eval_steps = [r["step"] for r in _rows(resumed) if r["kind"] == "eval"]
    assert eval_steps == [45, 90]
    same = lambda r: {k: v for k, v in r.items() if k not in ("elapsed_s", "images_per_s")}  # noqa: E731
    assert [same(r) for r in _rows(resumed)] == [same(r) for r in _rows(straight)]
