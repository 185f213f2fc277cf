import json
import subprocess
import sys

import numpy as np
import pytest

from infogan.training.config import resolve
from infogan.training.evaluate import cluster_accuracy
from infogan.training.judge import slant_and_width


def test_hungarian_assignment_recovers_a_permutation_and_counts_merged_digits():
    labels = np.repeat(np.arange(10), 100)
    perm = np.array([3, 7, 0, 9, 1, 2, 8, 4, 6, 5])  # category of each label
    pred = perm[labels]
    r = cluster_accuracy(pred, labels, 10, 10)
    assert r["accuracy"] == 1.0 and r["labels_with_own_category"] == 10
    assert all(r["category_to_label"][perm[l]] == l for l in range(10))
    # digits 4 and 9 merged into one category: at most one of them can be matched
    pred = pred.copy()
    pred[labels == 9] = perm[4]
    r = cluster_accuracy(pred, labels, 10, 10)
    assert r["accuracy"] == pytest.approx(0.9)
    assert r["category_share_max"] == pytest.approx(0.2)
    assert np.array(r["confusion"]).sum() == 1000


def _line(x0, x1, width=1):
    img = np.zeros((1, 1, 28, 28), np.float32)
    for y in range(4, 24):
        x = int(round(x0 + (x1 - x0) * (y - 4) / 19))
        img[0, 0, y, x - width // 2: x + width // 2 + 1] = 1
    return img


def test_slant_and_width_from_image_moments():
    upright, leaning_right, leaning_left = _line(14, 14), _line(10, 18), _line(18, 10)
    slant, _ = slant_and_width(np.concatenate([upright, leaning_right, leaning_left]))
    assert abs(slant[0]) < 1e-6
    # image rows grow downwards: a stroke whose bottom is further right has a positive mu11
    assert slant[1] > 0.3 and slant[2] < -0.3
    _, width = slant_and_width(np.concatenate([_line(14, 14, 1), _line(14, 14, 7)]))
    assert width[1] > 3 * width[0]


def test_evaluating_a_held_out_run_again_reads_its_held_out_slice_never_the_test_set(tmp_path, data_dir):
    """`infogan evaluate` on a run trained with --holdout: Q scored on the whole held-out slice and
    fidelity measured against it, as training did; the test set stays unread."""
    from infogan.training.judge import holdout_reference, load_or_train_judge

    from infogan.training.train import train

    run = train(resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), holdout=1000, run_name="ho"),
                progress=False)
    proc = subprocess.run([sys.executable, "-m", "infogan.cli", "evaluate", "--run", str(run), "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["n_images"] == 1000
    assert proc.stdout.splitlines()[0] == f"Q held-out accuracy: {100 * ev['accuracy']:.2f}% (1000 images)"
    floor = holdout_reference(load_or_train_judge(data_dir, "mnist"), data_dir, "mnist", 1000).floor
    # the same slice and judge; two processes may sum in another order (oneDNN picks kernels by threads and CPU)
    assert ev["generation"]["fidelity"]["floor"] == pytest.approx(floor, rel=1e-5)
    assert "as far from the held-out images as" in proc.stdout
