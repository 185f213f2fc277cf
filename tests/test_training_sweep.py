"""infogan sweep: runs one after another, RESULTS.md and its figure, reruns skip finished runs."""

import json

import pytest
from PIL import Image

from infogan.contract import InfoganError
from infogan.training.sweep import parse_runs, sweep


def test_runs_parse_as_seed_or_seed_and_threads():
    assert parse_runs(["0", "1", "2:1"], default_threads=2) == [(0, 2), (1, 2), (2, 1)]
    for bad in (["x"], ["0:0"], ["-1"], []):
        with pytest.raises(InfoganError, match="runs"):
            parse_runs(bad, default_threads=2)


def test_sweep_writes_a_row_per_run_and_a_rerun_trains_nothing(tmp_path, data_dir):
    results = tmp_path / "RESULTS.md"
    rows = sweep("smoke", [(0, 1), (1, 1)], tmp_path / "sweep", results, data_dir=str(data_dir), progress=False)
    assert [(r["seed"], r["threads"]) for r in rows] == [(0, 1), (1, 1)]
    text = results.read_text()
    table = [line for line in text.splitlines() if line.startswith("| mnist-smoke-")]
    assert len(table) == 2 and "| 0 | 1 |" in table[0] and "| 1 | 1 |" in table[1]
    assert rows[0]["cpu"] in table[0] and "2 runs: Q accuracy mean" in text
    Image.open(tmp_path / "results_curves.png").verify()
    checkpoint = tmp_path / "sweep" / "mnist-smoke-s0-t1" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    again = sweep("smoke", [(0, 1), (1, 1)], tmp_path / "sweep", results, data_dir=str(data_dir), progress=False)
    assert again == rows and checkpoint.stat().st_mtime_ns == before
    assert len((tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()[0])["accuracy"] == rows[0]["accuracy"]
