"""The self-labelling study: held-out runs only, the run folder untouched, rows that move."""

import hashlib
import json
import subprocess
import sys

from infogan.training.config import resolve
from infogan.training.self_label_study import study
from infogan.training.train import train


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_study_trains_q_on_a_copy_and_scores_it_on_the_held_out_slice(tmp_path, data_dir):
    run = train(resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path / "runs"), holdout=1000), progress=False)
    before = {p.name: _digest(p) for p in run.iterdir() if p.is_file()}
    out = tmp_path / "study.json"
    rows = study(run, steps=6, every=3, threshold=0.2, threads=1, out=out)
    assert [r["updates"] for r in rows] == [0, 3, 6]
    assert rows[0]["share_sure"] is None and all(0 <= r["share_sure"] <= 1 for r in rows[1:])
    for r in rows:
        assert 0 < r["q_accuracy"] <= 1 and 0 <= r["own"] <= 10
    # the updates change Q: the rows are not one classifier scored three times
    assert len({(r["q_accuracy"], r["transform_agreement"]) for r in rows}) > 1
    assert json.loads(out.read_text())["rows"] == rows
    assert {p.name: _digest(p) for p in run.iterdir() if p.is_file()} == before


def test_a_run_evaluated_on_the_test_set_is_refused_in_one_line(smoke_run, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "infogan.training.self_label_study", str(smoke_run),
                           "--out", str(tmp_path / "s.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"error: run={smoke_run} was evaluated on the test set (holdout=0): the study chooses a "
                           "recipe, so it reads only runs trained with --holdout\n")
    assert not (tmp_path / "s.json").exists()


def test_a_bad_step_count_is_refused_in_one_line_naming_it(smoke_run, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "infogan.training.self_label_study", str(smoke_run), "--steps", "0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr == "error: steps=0 is invalid: must be > 0\n"
