"""The Q-average study: arms side by side at equal updates, on a held-out slice, and its table."""

import json
import subprocess
import sys

from infogan.training.q_average_study import study


def test_the_study_scores_live_and_averaged_q_on_the_held_out_slice_and_prints_a_table(tmp_path, data_dir):
    out = tmp_path / "q.json"
    rows = study("smoke", seed=0, threads=1, holdout=1000, decays=[0.5, 0.9], every=4, out=out, data_dir=str(data_dir))
    assert [(r["step"], r["arm"]) for r in rows] == [(s, a) for s in (4, 8) for a in ("live", "average 0.5", "average 0.9")]
    for r in rows:
        assert 0 < r["q_accuracy"] <= 1 and 0 <= r["own"] <= 10 and 0 < r["category_share_max"] <= 1
    # averaging changes the weights Q reads with: after 8 updates the arms are not all one classifier
    last = [r for r in rows if r["step"] == 8]
    assert len({(r["q_accuracy"], r["transform_agreement"], r["category_share_max"]) for r in last}) > 1
    saved = json.loads(out.read_text())
    assert saved["holdout"] == 1000 and saved["rows"] == rows
    proc = subprocess.run([sys.executable, "-m", "infogan.training.q_average_study", "--table", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    table = proc.stdout.splitlines()
    assert table[0].startswith("| seed | updates | Q |") and len(table) == 2 + len(rows)
    assert f"| 0 | 8 | average 0.9 | {100 * rows[-1]['q_accuracy']:.2f}% |" in proc.stdout


def test_a_held_out_slice_as_large_as_the_training_set_is_refused_in_one_line(tmp_path, data_dir):
    proc = subprocess.run([sys.executable, "-m", "infogan.training.q_average_study", "--holdout", "60000",
                           "--data-dir", str(data_dir), "--out", str(tmp_path / "q.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("error: holdout=60000 is invalid: the training set has 60000 images, hold out fewer\n")
    assert not (tmp_path / "q.json").exists()
