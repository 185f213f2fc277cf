"""The G-averaging study names categories with the encoder the run publishes (D-and-Q's moving
average under the preset's q_ema_decay, updated after every update as train() updates it), so
its purity and Q accuracy read as a run's own evaluation does. A real smoke-sized run on real
MNIST, with the judge on and a Q average added (the smoke preset has neither)."""

import json

from infogan.training import averaging_study
from infogan.training.evaluate import evaluate


def test_the_study_names_categories_with_the_published_encoder(monkeypatch, tmp_path, data_dir):
    real_resolve, real_run, runs = averaging_study.resolve, averaging_study.held_out_run, []
    monkeypatch.setattr(averaging_study, "resolve", lambda *a, **k: real_resolve(*a, **k, judge=True, q_ema_decay=0.5))
    monkeypatch.setattr(averaging_study, "held_out_run", lambda cfg: runs.append(real_run(cfg)) or runs[-1])
    out = tmp_path / "avg.json"
    rows = averaging_study.study("smoke", seed=0, threads=1, holdout=1000, decays=[0.9], every=8, out=out,
                                 data_dir=str(data_dir))
    run, = runs
    saved = json.loads(out.read_text())
    assert saved["rows"] == rows and saved["encoder"] == "average 0.5"
    assert {r["step"] for r in rows} == {run.cfg.total_steps} == {8}
    # the published encoder is D-and-Q's average, updated after every update, not the live D
    assert run.published_discriminator() is run.d_average.module and run.d_average.updates == 8
    published, _ = evaluate(run.d_average.module, run.test_images, run.test_labels, run.label_names, run.calibration_images)
    live, _ = evaluate(run.d, run.test_images, run.test_labels, run.label_names, run.calibration_images)
    assert published["confusion"] != live["confusion"]  # two encoders: the check below can tell them apart
    assert {r["q_accuracy"] for r in rows} == {published["accuracy"]}
