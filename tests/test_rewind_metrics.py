"""On resume the metrics log is rewound to the checkpoint's step by writing the
shorter log beside it and renaming it over the old one: a crash mid-write keeps
the whole old log, and a reader that has it open keeps reading it whole."""

from __future__ import annotations

import errno
import json
import pathlib

import pytest

pytest.importorskip("torch")

from infogan.training.runs import rewind_metrics  # noqa: E402

ROWS = [{"step": s, "kind": "train", "loss_d": 1.0 / s} for s in range(100, 1100, 100)]


@pytest.fixture
def log(tmp_path) -> pathlib.Path:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def steps_in(path: pathlib.Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def test_rewinding_keeps_the_rows_up_to_the_checkpoint_step(log):
    rewind_metrics(log, 500)
    assert steps_in(log) == [100, 200, 300, 400, 500]


def test_a_disk_that_fills_mid_write_leaves_the_whole_old_log(log, monkeypatch):
    """The fault is injected into both of pathlib's whole-file writers, whichever the code
    uses: each opens its file for writing as the real one does, writes half, then fails."""
    def half_then_full(mode):
        def write(self, data, *args, **kwargs):
            with open(self, mode) as f:
                f.write(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return write

    monkeypatch.setattr(pathlib.Path, "write_text", half_then_full("w"))
    monkeypatch.setattr(pathlib.Path, "write_bytes", half_then_full("wb"))
    with pytest.raises(OSError):
        rewind_metrics(log, 500)
    monkeypatch.undo()
    assert steps_in(log) == [r["step"] for r in ROWS]
    assert [p.name for p in log.parent.iterdir()] == ["metrics.jsonl"]  # no temporary file left behind


def test_a_reader_that_has_the_log_open_keeps_reading_the_whole_old_log(log):
    before = log.read_text()
    with open(log) as reader:  # e.g. a plot of the curves, started just before the resume
        rewind_metrics(log, 500)
        assert reader.read() == before
    assert steps_in(log) == [100, 200, 300, 400, 500]
