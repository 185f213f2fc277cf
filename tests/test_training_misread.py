"""`infogan misread`: the real images Q reads as another class, above G's draws for the true class."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from infogan.training.config import resolve
from infogan.training.misread import confusions, named
from infogan.training.train import train


def test_confusions_are_the_most_frequent_wrong_readings_most_first_ties_by_label():
    labels = np.array([1, 1, 1, 9, 9, 9, 4, 4, 7, 0])
    read = np.array([2, 2, 1, 3, 3, 8, 9, 9, 7, 6])
    assert confusions(labels, read, 3) == [(1, 2, 2), (4, 9, 2), (9, 3, 2)]
    assert confusions(labels, read, 10) == [(1, 2, 2), (4, 9, 2), (9, 3, 2), (0, 6, 1), (9, 8, 1)]
    assert confusions(labels, labels, 5) == []


def test_with_more_categories_than_labels_a_spare_category_is_named_as_such_never_as_a_label():
    names = ["T-shirt", "trouser", "bag"]
    labels, read = np.array([0, 0, 1, 2, 2, 2]), np.array([-1, 1, -1, -1, -1, 2])
    shown = confusions(labels, read, 5)
    assert shown == [(2, -1, 2), (0, -1, 1), (0, 1, 1), (1, -1, 1)]
    assert named(shown, names) == [
        {"true": "bag", "read_as": "a category of no label", "images": 2},
        {"true": "T-shirt", "read_as": "a category of no label", "images": 1},
        {"true": "T-shirt", "read_as": "trouser", "images": 1},
        {"true": "trouser", "read_as": "a category of no label", "images": 1}]


def _misread(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "infogan.cli", "misread", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_a_held_out_run_is_drawn_from_its_held_out_slice_and_agrees_with_its_own_evaluation(tmp_path, data_dir):
    run = train(resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), holdout=1000, run_name="ho"),
                progress=False)
    out = tmp_path / "misread.png"
    proc = _misread("--run", run, "--data-dir", data_dir, "--out", out, "--pairs", 3, "--per-row", 10)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # the run's evaluation: the first 500 (smoke's eval_subset) of its 1,000 held-out training images
    ev = json.loads((run / "evaluation.json").read_text())
    assert lines[0] == f"Q accuracy {100 * ev['accuracy']:.2f}% on the held-out slice (500 images)"
    # each confusion printed is a count of the run's own confusion matrix, read through its category -> label
    confusion, to_label = np.array(ev["confusion"]), ev["category_to_label"]
    expected = {}
    for true in range(10):
        for category, n in enumerate(confusion[true]):
            if n and to_label[category] != true:
                expected[(true, to_label[category])] = expected.get((true, to_label[category]), 0) + int(n)
    top = sorted(expected.items(), key=lambda kv: (-kv[1], *kv[0]))[:3]
    assert lines[1:4] == [f"{t} read as {r}: {n} images" for (t, r), n in top]
    assert lines[-1] == f"wrote {out}"
    # two rows of ten 28-pixel images (2-pixel gutters) per confusion, 4 pixels between confusions, drawn twice as large
    assert Image.open(out).size == (2 * (10 * 30 + 2), 2 * (3 * 2 * 32 + 2 * 4))


def test_training_draws_the_picture_into_the_run_as_the_command_does_and_bad_settings_are_refused_in_one_line(
        smoke_run, data_dir, tmp_path):
    drawn_by_training = (smoke_run / "misread.png").read_bytes()
    (smoke_run / "misread.png").unlink()
    proc = _misread("--run", smoke_run, "--data-dir", data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "on the test set (500 images)" in proc.stdout.splitlines()[0]
    # the command's default picture goes into the run, the same picture training drew at its end
    assert (smoke_run / "misread.png").read_bytes() == drawn_by_training
    for flag, value, allowed in (("--pairs", 0, "from 1 to 20"), ("--per-row", 41, "from 1 to 40")):
        proc = _misread("--run", smoke_run, "--data-dir", data_dir, "--out", tmp_path / "x.png", flag, value)
        name = flag[2:].replace("-", "_")
        assert proc.returncode == 2 and proc.stderr == f"error: {name}={value} is invalid: must be {allowed}\n"
        assert not (tmp_path / "x.png").exists()
    proc = _misread("--run", tmp_path / "none", "--data-dir", data_dir)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: run={tmp_path / 'none'} holds no checkpoint.pt")



def _shared(*args):
    return subprocess.run([sys.executable, "-m", "infogan.cli", "misread-shared", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_misread_shared_counts_the_images_every_run_misreads_and_refuses_runs_on_other_images(
        smoke_run, tmp_path, data_dir):
    runs = [train(resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), holdout=1000, seed=seed,
                          run_name=f"ho{seed}"), progress=False) for seed in (0, 1)]
    ev = [json.loads((run / "evaluation.json").read_text()) for run in runs]
    out = tmp_path / "shared.png"
    proc = _shared(*runs, "--data-dir", data_dir, "--out", out, "--per-row", 10)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # each run's line is its own evaluation: Q's accuracy and the images it misreads of 500
    for line, run, e in zip(lines, runs, ev):
        assert line == f"{run}: Q accuracy {100 * e['accuracy']:.2f}%, {round(500 * (1 - e['accuracy'])):,} misread"
    every = int(lines[2].split("misread by every run: ")[1].split(" of ")[0])
    assert 0 < every <= min(round(500 * (1 - e["accuracy"])) for e in ev)
    assert "of the held-out slice's 500 images" in lines[2]
    # a run beside itself: every image it misreads is misread by every run, and the picture holds them all
    proc = _shared(runs[0], runs[0], "--data-dir", data_dir, "--out", out, "--per-row", 10)
    alone = round(500 * (1 - ev[0]["accuracy"]))
    assert proc.returncode == 0 and f"misread by every run: {alone} of" in proc.stdout
    rows = -(-alone // 10)
    assert Image.open(out).size == (2 * (10 * 30 + 2), 2 * (rows * 30 + 2))
    # the set beside the picture lists those images, so later runs can be judged against it
    assert proc.stdout.splitlines()[-1] == f"wrote {out.with_suffix('.json')}"
    own = [json.loads(out.with_suffix(".json").read_text())]
    assert own[0]["images"] == {"dataset": "mnist", "holdout": 1000, "eval_subset": 500}
    assert len(own[0]["indices"]) == len(own[0]["labels"]) == alone
    set_a = tmp_path / "a.json"
    out.with_suffix(".json").rename(set_a)
    assert _shared(runs[1], runs[1], "--data-dir", data_dir, "--out", out).returncode == 0
    own.append(json.loads(out.with_suffix(".json").read_text()))
    # against A's own misreads: A reads none of them right, B those it does not misread itself,
    # and what both misread is the pair's shared count
    proc = _shared(runs[0], runs[1], "--data-dir", data_dir, "--out", out, "--against", set_a)
    assert proc.returncode == 0, proc.stderr
    a, b = (set(o["indices"]) for o in own)
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(f"misread, 0 of {set_a}'s {alone} read right")
    assert lines[1].endswith(f"misread, {len(a - b)} of {set_a}'s {alone} read right")
    assert f"misread by every run: {len(a & b)} of" in lines[2] and len(a & b) == every
    # a set of other images, or one that is not a set misread-shared wrote: one line each
    for change, why in (({"images": {**own[0]["images"], "holdout": 2000}}, "it lists images of (dataset, holdout, "
                         "eval_subset) ('mnist', 2000, 500), the runs were evaluated on ('mnist', 1000, 500)"),
                        ({"labels": [(v + 1) % 10 for v in own[0]["labels"]]}, "its indices and labels are not those"),
                        ({"indices": "all"}, "must be a set misread-shared wrote (indices and labels must be lists")):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**own[0], **change}))
        proc = _shared(runs[0], runs[1], "--data-dir", data_dir, "--out", out, "--against", bad)
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: against={bad} is invalid: {why}"), proc.stderr
        assert proc.stderr.count("\n") == 1
    # runs evaluated on other images (the test set) and too few runs: one line each, no picture
    out.unlink()
    proc = _shared(runs[0], smoke_run, "--data-dir", data_dir, "--out", out)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: run={smoke_run.resolve()} is invalid: evaluated on other images")
    assert proc.stderr.count("\n") == 1 and not out.exists()
    proc = _shared(runs[0], "--data-dir", data_dir, "--out", out)
    assert proc.returncode == 2 and proc.stderr == "error: runs=1 is invalid: must be at least 2 run folders\n"
