"""Training and evaluation keep every tensor on the device of the module that reads it.

CI has no GPU, so PyTorch's `meta` device stands in for CUDA here: like CUDA, it
refuses any op that mixes it with CPU tensors ("Tensor on device meta is not on
the expected device cpu"), which is how the first H200 run crashed at its first
judged evaluation. Unlike CUDA, a meta tensor holds no values, so the test double
`MetaStandsInForCuda` answers the two things only real memory can: a copy back to
the CPU comes back as zeros of the right shape, and reading a scalar gives 1. The
figures are then meaningless; what is tested is that nothing mixes devices.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from infogan.contract import InfoganError, LatentTemplate, sample_latent
from infogan.training.augment import affine_draws
from infogan.training.config import resolve
from infogan.training.evaluate import evaluate_models
from infogan.training.metrics_log import MetricsLog
from infogan.training.model import Discriminator, Generator


# the double's zero images have no slant to correlate with: numpy and scipy say so
ZERO_IMAGES = pytest.mark.filterwarnings("ignore:invalid value encountered", "ignore:An input array is constant")


class MetaStandsInForCuda(TorchDispatchMode):
    """A test double for a GPU (see the module's docstring)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._to_copy.default and args[0].device.type == "meta":
            target = kwargs.get("device")
            if target is not None and torch.device(target).type == "cpu":
                return torch.zeros(args[0].shape, dtype=kwargs.get("dtype") or args[0].dtype)
        if func is torch.ops.aten._local_scalar_dense.default and args[0].device.type == "meta":
            return 1
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def judge(data_dir):
    from infogan.training.judge import load_or_train_judge

    return load_or_train_judge(data_dir, "mnist")


@ZERO_IMAGES
def test_a_judged_evaluation_runs_with_the_models_on_another_device(judge):
    # the H200's crash: latents built on the CPU fed to a generator on CUDA
    t = LatentTemplate()
    g, d = Generator(t).to("meta"), Discriminator(t).to("meta")
    images = torch.rand(40, 1, 28, 28).to("meta")
    labels = np.arange(40) % 10
    with MetaStandsInForCuda():
        ev, _ = evaluate_models(g, d, images, labels, [str(i) for i in range(10)], "mnist", 0, 0,
                                calibration_images=images[:20], judge=judge)
    assert set(ev["generation"]) >= {"purity_mean", "digits_generated", "codes"}
    assert next(judge.parameters()).device.type == "cpu"  # the judge stays where it was trained


@ZERO_IMAGES
def test_a_whole_run_trains_evaluates_and_draws_on_another_device(data_dir, tmp_path, monkeypatch, judge):
    # every command that trains goes through train(): steps, the judged evaluation,
    # sample grids, checkpoints and the curves, all with the models off the CPU
    import infogan.training.train as training

    monkeypatch.setattr(training, "start", lambda world: torch.device("meta"))
    cfg = resolve("smoke", data_dir=str(data_dir), out_dir=str(tmp_path), run_name="meta", judge=True,
                  ema_decay=0.9)  # the published generator is G's average, on G's device
    with MetaStandsInForCuda():
        run = training.train(cfg, progress=False)
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [4, 8]
    assert {"generation", "generation_live"} <= set(json.loads((run / "evaluation.json").read_text()))
    assert (run / "samples" / "epoch_002.png").is_file()


def test_a_training_step_and_its_logging_never_wait_for_the_device():
    # on a GPU, reading a figure back (.item(), float(), .cpu()) stalls the step until
    # the device is done; on meta it raises, so a step that reads nothing back passes
    from infogan.training.average import GeneratorAverage
    from infogan.training.train import BatchStream, make_optimizers, train_step

    cfg = resolve("default", batch_size=8, steps_per_epoch=100, epochs=1)
    g, d = Generator(cfg.template).to("meta"), Discriminator(cfg.template).to("meta")
    opt_d, opt_g = make_optimizers(cfg, g, d)
    stream = BatchStream(cfg, torch.rand(64, 1, 28, 28).to("meta"))
    log = MetricsLog(Path(os.devnull), cfg, progress=False)
    average = GeneratorAverage(g, 0.99)

    for step in range(3):  # rows are read back every 10 steps, never inside one
        out = train_step(cfg, g, d, opt_d, opt_g, stream.real(step), stream.latent(step, "meta"),
                         contextlib.nullcontext, stream.transforms(step, "meta"))
        average.update(g)
        log.step(step + 1, out)
    assert len(log.pending) == 3


def test_the_stream_draws_ahead_exactly_what_each_step_would_draw():
    from infogan.training.train import BatchStream

    from infogan.contract import NOISE
    from infogan.training.train import noise_scale_factor

    # the default preset's noise widens: from the template's draw times noise_start / noise_scale to the draw itself
    cfg = resolve("default", batch_size=4, seed=3, noise_widen_from=BatchStream.CHUNK, noise_widen_to=2 * BatchStream.CHUNK)
    stream = BatchStream(cfg, torch.rand(32, 1, 28, 28))
    for step in (0, 1, BatchStream.CHUNK - 1, BatchStream.CHUNK, BatchStream.CHUNK + 3, 2 * BatchStream.CHUNK + 7):
        expected = sample_latent(cfg.template, 4, np.random.default_rng([3, 2, step]))
        expected[NOISE] *= np.float32(noise_scale_factor(cfg, step))
        got = stream.latent(step, "cpu")
        for k, v in expected.items():
            np.testing.assert_array_equal(got[k].numpy(), v)
        real, fake = stream.transforms(step, "cpu")
        rng_real, rng_fake = stream.transform_rngs(step)
        assert torch.equal(real, affine_draws(rng_real, 4)) and torch.equal(fake, affine_draws(rng_fake, 4))


def test_more_processes_than_gpus_are_refused_in_one_line_before_nccl(monkeypatch):
    # a test double for a one-GPU machine (CI has none): torch is told it has CUDA and one device
    import infogan.training.distributed as distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: pytest.fail("a GPU was taken before the check"))
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda *a, **k: pytest.fail("NCCL was started"))
    with pytest.raises(InfoganError) as e:
        distributed.start(distributed.World(rank=1, size=2, local_rank=1, local_size=2))
    line = str(e.value)
    assert "\n" not in line and "nproc-per-node=2" in line and "1 GPU" in line and "gloo" in line


def test_progress_reads_as_plain_lines_when_the_output_is_not_a_terminal(tmp_path):
    cfg = resolve("default", batch_size=8, steps_per_epoch=100, epochs=10)  # 1,000 steps: a line every 20
    out = io.StringIO()
    log = MetricsLog(tmp_path / "metrics.jsonl", cfg, progress=True, stream=out)
    figures = {"loss_d": torch.tensor(1.0), "loss_g": torch.tensor(0.5), "l_i": torch.tensor(2.0),
               "info": torch.tensor(0.1), "i_real": torch.tensor(0.0)}
    with log:
        log.evaluation(0, {"accuracy": 0.25, "labels_with_own_category": 1, "category_share_max": 0.5,
                           "category_to_label": [0] * 10, "transform_agreement": 1.0, "transform_agreement_min": 1.0})
        for step in range(1, cfg.total_steps + 1):
            log.step(step, figures)
    lines = out.getvalue().splitlines()
    assert 40 <= len(lines) <= 60 and not any("━" in line for line in lines)  # about 2% apart, no bar
    last = lines[-1]
    for part in ("train step 1,000/1,000 (100%)", "img/s", "acc 25.0%", "left 0:00", "D 1.000"):
        assert part in last
    assert (tmp_path / "progress.log").read_text().splitlines() == lines
