"""The held-out studies train the dataset they are given, on that dataset's schedule; the command
line passes --dataset through and refuses an unknown one. The Fashion-MNIST files are not on a CI
machine, so the run itself is replaced where it would start: these tests check what it is asked to
train, not the training (the MNIST studies train for real in test_training_q_average_study.py and
test_training_averaging_study.py)."""

import json
import subprocess
import sys

import pytest

from infogan.training import averaging_study, held_out_study, q_average_study


class Started(Exception):
    pass


@pytest.mark.parametrize("module,judged", [(averaging_study, True), (q_average_study, False)])
def test_a_study_trains_the_dataset_given_on_its_schedule(module, judged, monkeypatch, tmp_path):
    asked = []

    def start(cfg):
        asked.append(cfg)
        raise Started

    monkeypatch.setattr(module, "held_out_run", start)
    for dataset in ("fashion-mnist", "mnist"):
        with pytest.raises(Started):
            module.study("default", seed=1, threads=1, holdout=10_000, decays=[0.99], every=500,
                         out=tmp_path / "study.json", dataset=dataset)
    garments, digits = asked
    assert (garments.dataset, garments.total_steps, garments.holdout, garments.seed) == ("fashion-mnist", 5000, 10_000, 1)
    assert (digits.dataset, digits.total_steps) == ("mnist", 2500)
    assert garments.judge is judged and digits.judge is judged
    assert not (tmp_path / "study.json").exists()


def test_the_command_line_passes_the_dataset_to_the_study(monkeypatch, tmp_path):
    got = []
    monkeypatch.setattr(sys, "argv", ["study", "--dataset", "fashion-mnist", "--threads", "1", "--out", str(tmp_path / "s.json")])
    held_out_study.main("A study.", [0.99], lambda *args: got.append(args), table=lambda paths: "")
    assert got and got[0][0] == "default" and got[0][-1] == "fashion-mnist"


def test_an_unknown_dataset_is_refused_before_anything_trains(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "infogan.training.averaging_study", "--dataset", "cifar10",
                           "--out", str(tmp_path / "s.json")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: dataset='cifar10' is unknown: choose one of mnist, fashion-mnist\n"
    assert not (tmp_path / "s.json").exists()


def test_the_averaging_table_names_its_column_for_any_dataset(tmp_path):
    row = {"seed": 0, "step": 5000, "arm": "average 0.99", "fidelity": 6.96, "purity_mean": 0.774, "purity_worst": 0.33,
           "digits": 9, "slant": 0.03, "q_accuracy": 0.7256}
    path = tmp_path / "garments.json"
    path.write_text(json.dumps({"dataset": "fashion-mnist", "rows": [row]}))
    head, _, line = averaging_study.table([path]).splitlines()
    assert "| classes drawn |" in head and "digits" not in head
    assert line == "| 0 | 5,000 | average 0.99 | 6.96 | 77.4% | 33% | 9/10 | 0.03 | 72.56% |"
