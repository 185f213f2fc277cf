"""A run folder's config.json comes from disk, where it may have been truncated or edited by hand: every
command that reads it (train --resume, evaluate, the sub-heads study) says in one line which file is wrong
and how, before any work, and leaves the run as it was."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from infogan.training.config import resolve
from infogan.training.train import train

CORRUPTIONS = {
    "truncated": (lambda text: text[:40], "is unreadable or not JSON (JSONDecodeError: "),
    "not an object": (lambda text: "[1, 2]", "is invalid: must be a JSON object of settings, not list"),
    "a word for a number": (lambda text: _edit(text, batch_size="big"), ": batch_size='big' is invalid: must be an integer"),
    "out of range": (lambda text: _edit(text, epochs=-3), ": epochs=-3 is invalid: must be > 0"),
    "a template that is no object": (lambda text: _edit(text, template=5),
                                     ": latent template must be an object with keys categorical, continuous, "
                                     "noise_dim, noise_scale, not int"),
    "an unknown setting": (lambda text: _edit(text, speed=11), ": unknown keys ['speed']"),
}


def _edit(text: str, **changes) -> str:
    return json.dumps({**json.loads(text), **changes})


@pytest.fixture(scope="module")
def smoke_run(module_tmp, data_dir):
    return train(resolve("smoke", data_dir=str(data_dir), out_dir=str(module_tmp("runs")), run_name="one"),
                 progress=False)


def _corrupt_copy(smoke_run, tmp_path, corruption):
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    change, said = CORRUPTIONS[corruption]
    (run / "config.json").write_text(change((run / "config.json").read_text()))
    return run, said


def _one_error_line(args: list[str], run, said: str) -> None:
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    lines = [text for text in done.stderr.splitlines() if text.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: config={run / 'config.json'}") and said in lines[0], lines
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing written


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_resume_refuses_a_corrupt_config_in_one_line_and_leaves_the_run(smoke_run, tmp_path, corruption):
    run, said = _corrupt_copy(smoke_run, tmp_path, corruption)
    _one_error_line(["infogan.cli", "train", "--resume", str(run), "--epochs", "3", "--no-progress"], run, said)


@pytest.mark.parametrize("corruption", ["truncated", "out of range"])
def test_evaluate_and_the_sub_heads_study_refuse_a_corrupt_config_in_one_line(smoke_run, tmp_path, data_dir,
                                                                              corruption):
    run, said = _corrupt_copy(smoke_run, tmp_path, corruption)
    _one_error_line(["infogan.cli", "evaluate", "--run", str(run), "--data-dir", str(data_dir), "--no-judge"], run, said)
    _one_error_line(["infogan.training.subheads_study", str(run)], run, said)
