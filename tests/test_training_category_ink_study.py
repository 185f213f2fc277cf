"""The category-ink study reads a run's published models on its evaluation images: its categories are the
ones evaluation scored (their counts add up to the images, by class as the labels say), the ink it reports is
the mean intensity over a picture's inked pixels, and its command writes the table and the picture or refuses
bad input in one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from infogan.contract import InfoganError
from infogan.training.category_ink_study import INK_LEVEL, categories_led_by, ink, study
from infogan.training.config import resolve
from infogan.training.evaluate import cluster_accuracy
from infogan.training.train import train


def test_ink_is_the_mean_over_the_pixels_above_the_level():
    images = np.zeros((3, 1, 28, 28), np.float32)
    images[0, 0, :2] = 0.8  # 56 pixels of 0.8
    images[1, 0, :2, :14] = 1.0
    images[1, 0, :2, 14:] = 0.5
    images[1, 0, 5, 5] = INK_LEVEL  # at the level: background
    assert ink(images).tolist() == pytest.approx([0.8, 0.75, 0.0])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, data_dir):
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path_factory.mktemp("ink")), judge=False)
    return train(cfg, progress=False)


def test_the_categories_are_those_evaluation_scored(smoke_run):
    result = study(smoke_run)
    rows = result["categories"]
    assert [r["category"] for r in rows] == list(range(10))
    assert sum(r["images"] for r in rows) == len(result["truth"]) == 500
    for r in rows:
        counts = np.bincount(result["truth"][result["predicted"] == r["category"]], minlength=10)
        assert r["counts"] == counts.tolist() and r["largest_count"] == counts.max()
        assert 0 <= r["generated_ink"] <= 1 and r["generated_ink_sd"] >= 0
    scored = cluster_accuracy(result["predicted"], result["truth"], 10, 10)
    assert scored["accuracy"] == json.loads((smoke_run / "evaluation.json").read_text())["accuracy"]


def test_the_command_prints_the_table_and_writes_the_picture(smoke_run, tmp_path):
    out = tmp_path / "tops.png"
    done = subprocess.run([sys.executable, "-m", "infogan.training.category_ink_study", str(smoke_run), "--classes", "1,7",
                           "--categories", "0,3", "--picture", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("| category | images | largest class | 1 | 7 | real ink |")
    assert sum(line.startswith("| ") for line in lines) == 11  # the header and a row per category
    assert out.stat().st_size > 0


@pytest.mark.parametrize(("args", "said"), [(["--classes", "2,x"], "error: classes='2,x' is invalid: must be comma-separated whole numbers"),
                                            (["--classes", "10"], "error: classes='10' is invalid: each must be from 0 to 9")])
def test_bad_input_is_one_line(smoke_run, args, said):
    done = subprocess.run([sys.executable, "-m", "infogan.training.category_ink_study", str(smoke_run), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert [line for line in done.stderr.splitlines() if line.strip()] == [said]


def test_the_picture_shows_the_categories_led_by_the_classes_asked_and_refuses_when_none_is():
    result = {"labels": ["a", "b", "c"], "categories": [{"category": 0, "largest_class": "b"},
                                                        {"category": 1, "largest_class": "a"},
                                                        {"category": 2, "largest_class": "b"}]}
    assert categories_led_by(result, [1]) == [0, 2]
    assert categories_led_by(result, [0, 1]) == [0, 1, 2]
    with pytest.raises(InfoganError, match=r"^classes='2' is no category's largest class, so the picture would have no "
                                           r"rows: name the categories with --categories$"):
        categories_led_by(result, [2])


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "infogan.training.category_ink_study", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        f"error: run={tmp_path} is not a run directory (no config.json)"]
