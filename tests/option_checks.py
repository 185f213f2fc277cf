"""What the tests of a training option share: how its bad value must be refused (resolve() raises
one InfoganError naming it; `infogan train` prints that one line and exits non-zero before it makes
a run folder), and one training step of fresh models on random images under a configuration."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infogan.contract import InfoganError
from infogan.training.config import TrainConfig, resolve
from infogan.training.model import Discriminator, Generator
from infogan.training.train import BatchStream, make_optimizers, train_step


def assert_resolve_refuses(name: str, value, allowed: str) -> None:
    """resolve('smoke', name=value) raises 'name=value is invalid: must be <allowed>...'."""
    with pytest.raises(InfoganError, match=re.escape(f"{name}={value} is invalid: must be {allowed}")):
        resolve("smoke", **{name: value})


def assert_train_refuses(runs_dir: Path, option: str, value: str, line: str) -> None:
    """`infogan train --smoke <option> <value>` fails with exactly `line` on stderr and no run folder."""
    done = subprocess.run([sys.executable, "-m", "infogan.cli", "train", "--smoke", "--runs-dir", str(runs_dir),
                           option, value], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert [text for text in done.stderr.splitlines() if text.strip()] == [line]
    assert not any(runs_dir.iterdir())  # refused before a run folder was made


def one_step(cfg: TrainConfig, transforms: str = "generators") -> dict:
    """One training step of models made under torch seed 0, on 64 random images; the real transforms'
    draws come from the stream's generators or are made ahead ("ahead"). -> both models' weights after it."""
    torch.manual_seed(0)
    g, d = Generator(cfg.template), Discriminator(cfg.template, **cfg.architecture())
    opt_d, opt_g = make_optimizers(cfg, g, d)
    stream = BatchStream(cfg, torch.rand(64, 1, 28, 28))
    rngs = stream.transforms(0, "cpu") if transforms == "ahead" else stream.transform_rngs(0)
    train_step(cfg, g, d, opt_d, opt_g, stream.real(0), stream.latent(0, "cpu"), contextlib.nullcontext, rngs)
    return {**{"g." + k: v for k, v in g.state_dict().items()}, **{"d." + k: v for k, v in d.state_dict().items()}}
