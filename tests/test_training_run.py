"""The smoke run end to end, determinism, and resume."""

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from infogan.cli import app
from infogan.contract import InfoganError
from infogan.training.checkpoint import build_models, load_checkpoint
from infogan.training.config import resolve
from infogan.training.train import train


def test_smoke_run_writes_config_metrics_checkpoint_and_pictures(smoke_run):
    cfg = json.loads((smoke_run / "config.json").read_text())
    assert cfg["preset"] == "smoke" and cfg["template"]["categorical"] == [10]
    rows = [json.loads(l) for l in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert train_rows[-1]["step"] == 8 and train_rows[-1]["images_seen"] == 8 * 32
    assert all(np.isfinite(r[k]) for r in train_rows for k in ("loss_d", "loss_g", "l_i"))
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [4, 8]
    ev = json.loads((smoke_run / "evaluation.json").read_text())
    assert 0 <= ev["accuracy"] <= 1 and sorted(l for l in ev["category_to_label"] if l >= 0) == list(range(10))
    assert np.array(ev["confusion"]).sum() == ev["n_images"] == 500
    g, d = build_models(load_checkpoint(smoke_run / "checkpoint.pt"))
    assert g(torch.zeros(2, 62), torch.eye(10)[:2], torch.zeros(2, 2)).shape == (2, 1, 28, 28)
    for png in [smoke_run / "samples" / "epoch_002.png", smoke_run / "curves.png"]:
        img = Image.open(png)
        img.verify()
    grid = np.asarray(Image.open(smoke_run / "samples" / "epoch_002.png"))
    # a row per category (10) and a column per continuous value (10), two panels
    assert grid.shape[0] == 2 * (10 * 30 + 2)
    assert (smoke_run.parent / "latest").resolve() == smoke_run


def _weights(run):
    ckpt = load_checkpoint(run / "checkpoint.pt")
    return {**{"g." + k: v for k, v in ckpt["generator"].items()}, **{"d." + k: v for k, v in ckpt["discriminator"].items()}}


def test_training_is_deterministic_and_resume_matches_an_uninterrupted_run(tmp_path, data_dir):
    base = dict(data_dir=str(data_dir), out_dir=str(tmp_path), epochs=2)
    straight = train(resolve("smoke", run_name="straight", **base), progress=False)
    again = train(resolve("smoke", run_name="again", **base), progress=False)
    half = train(resolve("smoke", run_name="half", **{**base, "epochs": 1}), progress=False)
    resumed = train(resolve("smoke"), resume=half, progress=False, epochs=2)
    a, b, c = _weights(straight), _weights(again), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(a[k], c[k]) for k in a), [k for k in a if not torch.equal(a[k], c[k])][:3]
    steps = [json.loads(l)["step"] for l in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # one run's log, no rows repeated
    # fewer epochs than the run has trained: refused, config.json untouched
    before = (resumed / "config.json").read_text()
    with pytest.raises(InfoganError, match="epochs=1 is invalid: the run has already trained 8 updates"):
        train(resolve("smoke"), resume=resumed, progress=False, epochs=1)
    assert (resumed / "config.json").read_text() == before


def test_resuming_on_another_number_of_processes_warns_once_and_names_both(tmp_path, data_dir, monkeypatch):
    from infogan.training import train as training

    run = train(resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), epochs=1), progress=False)
    assert load_checkpoint(run / "checkpoint.pt")["world_size"] == 1
    monkeypatch.setattr(training, "load_checkpoint", lambda p: {**load_checkpoint(p), "world_size": 2})
    with pytest.warns(training.WorldSizeChanged, match=r"trained on 2 process\(es\) and continues on 1.*cover 32 images instead of 16"):
        train(resolve("smoke"), resume=run, progress=False, epochs=2)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same number of processes: no warning
        train(resolve("smoke"), resume=run, progress=False, epochs=2)


def test_cli_train_smoke_and_bad_preset(tmp_path, data_dir):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--smoke", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Q test accuracy" in res.output
    res = runner.invoke(app, ["train", "--preset", "nope", "--runs-dir", str(tmp_path)])
    assert res.exit_code != 0 and isinstance(res.exception, Exception) and "preset='nope'" in str(res.exception)


def test_cli_resume_refuses_flags_it_would_ignore_and_names_them(tmp_path, data_dir):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--resume", str(tmp_path), "--lambda-cat", "2", "--threads", "1",
                              "--data-dir", str(data_dir)])
    assert res.exit_code != 0
    message = str(res.exception)
    assert "--lambda-cat, --threads, --data-dir cannot be used with --resume" in message
    assert "--epochs" in message and "\n" not in message


def test_cli_settings_of_the_transform_terms_reach_the_runs_config_and_bad_ones_are_refused(tmp_path, data_dir):
    runner = CliRunner()
    base = ["train", "--smoke", "--epochs", "1", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path), "--no-progress"]
    res = runner.invoke(app, base + ["--lambda-real", "0.7", "--lambda-rotation", "0.3", "--real-copies", "2",
                                     "--holdout", "300", "--run-name", "weights"])
    assert res.exit_code == 0, res.output
    # scored on held-out training images, and the command says so
    assert "Q held-out accuracy" in res.output and "test accuracy" not in res.output
    cfg = json.loads((tmp_path / "weights" / "config.json").read_text())
    assert (cfg["lambda_real"], cfg["lambda_rotation"], cfg["real_copies"]) == (0.7, 0.3, 2)
    res = runner.invoke(app, base + ["--lambda-rotation", "-1", "--run-name", "bad"])
    assert res.exit_code != 0 and "lambda_rotation=-1.0 is invalid: must be >= 0" in str(res.exception)
    assert not (tmp_path / "bad").exists()
