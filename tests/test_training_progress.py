"""Progress of `infogan train` where its output is not a terminal (make train > log, CI, nohup):
plain lines a person can read, not a progress bar collapsed to one line."""

from __future__ import annotations

import os
import subprocess
import sys


def test_train_writes_plain_progress_lines_into_a_log(tmp_path, data_dir):
    # a pipe, as `make train > log` gives; the smoke preset's 8 updates make one row, at the end
    env = dict(os.environ, COLUMNS="80")
    out = subprocess.run([sys.executable, "-m", "infogan.cli", "train", "--preset", "smoke", "--data-dir", str(data_dir),
                          "--runs-dir", str(tmp_path), "--run-name", "piped"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("train step")]
    assert lines, out.stdout
    last = lines[-1]
    for part in ("train step 8/8 (100%)", "img/s", "acc ", "left 0:00", "elapsed"):
        assert part in last
    assert "━" not in out.stdout  # no bar characters in a log
    assert (tmp_path / "piped" / "progress.log").read_text().splitlines() == lines
