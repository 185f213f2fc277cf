"""Export on a really trained run: `infogan export` with its defaults
(runs/latest, $INFOGAN_MODEL_REPOSITORY) publishes two models that onnxruntime
runs as the run's PyTorch networks do."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from infogan.contract import model_versions, ENCODER_MODEL, GENERATOR_MODEL, IMAGE, encoder_outputs
from infogan.export import parity


@pytest.mark.slow
def test_cli_export_of_the_latest_trained_run_matches_pytorch(smoke_run, tmp_path):
    from infogan.training.checkpoint import build_models, checkpoint_template, load_checkpoint
    from infogan.training.model import Encoder

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(smoke_run, target_is_directory=True)
    repo = tmp_path / "served"
    env = dict(os.environ, INFOGAN_MODEL_REPOSITORY=str(repo))
    proc = subprocess.run([sys.executable, "-m", "infogan.cli", "export"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "version 1" in proc.stdout
    # the exporter logs a line per torchvision operator it cannot register; a user sees none
    assert "torchvision" not in proc.stderr + proc.stdout
    assert model_versions(repo / GENERATOR_MODEL) == [1] and model_versions(repo / ENCODER_MODEL) == [1]

    ckpt = load_checkpoint(smoke_run / "checkpoint.pt")
    template, (g, d) = checkpoint_template(ckpt), build_models(ckpt)
    gen = parity.session((repo / GENERATOR_MODEL / "1" / "model.onnx").read_bytes())
    enc = parity.session((repo / ENCODER_MODEL / "1" / "model.onnx").read_bytes())
    for n in parity.PARITY_BATCHES:
        feeds = parity.generator_feeds(template, n, seed=42)
        image = gen.run([IMAGE], feeds)[0]
        got = enc.run([s.name for s in encoder_outputs(template)], {IMAGE: image})
        with torch.no_grad():
            want_image = g(*[torch.from_numpy(v) for v in feeds.values()]).numpy()
            want = Encoder(d)(torch.from_numpy(image))
        assert np.abs(image - want_image).max() <= parity.PARITY_ATOL
        for a, b in zip(got, want):
            assert np.abs(a - b.numpy()).max() <= parity.PARITY_ATOL
