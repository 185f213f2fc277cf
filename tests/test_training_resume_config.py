"""The Python API's resume keeps the run's own config.json, as the CLI's --resume does:
a configuration that would change the run is refused in one line, not silently replaced."""

from __future__ import annotations

import json

import pytest

from infogan.contract import InfoganError
from infogan.training.checkpoint import load_checkpoint
from infogan.training.config import resolve
from infogan.training.train import train


@pytest.fixture(scope="module")
def one_epoch_run(module_tmp, data_dir):
    out = module_tmp("runs")
    return train(resolve("smoke", data_dir=str(data_dir), out_dir=str(out), run_name="one", epochs=1), progress=False)


@pytest.mark.parametrize("cfg,says", [
    (lambda: resolve("smoke", lambda_cat=2.0), r"lambda_cat=2\.0 cannot be used with resume=.*the run has lambda_cat=1\.0"),
    (lambda: resolve("smoke", batch_size=64), r"batch_size=64 cannot be used with resume=.*the run has batch_size=32"),
    (lambda: resolve("default"), r"preset='default' cannot be used with resume=.*the run has preset='smoke'"),
])
def test_a_config_that_would_change_a_resumed_run_is_refused_in_one_line(one_epoch_run, cfg, says):
    before = (one_epoch_run / "config.json").read_text()
    with pytest.raises(InfoganError, match=says) as e:
        train(cfg(), resume=one_epoch_run, progress=False, epochs=2)
    assert "\n" not in str(e.value) and "cfg=None" in str(e.value)
    assert (one_epoch_run / "config.json").read_text() == before  # refused before anything changed
    assert load_checkpoint(one_epoch_run / "checkpoint.pt")["step"] == 4


def test_a_run_resumes_on_its_own_config_when_cfg_is_none_or_agrees(one_epoch_run, data_dir):
    same = resolve("smoke", data_dir=str(data_dir), out_dir=str(one_epoch_run.parent), run_name="one")
    with pytest.raises(InfoganError, match="epochs=0 is invalid"):  # accepted, and on to the epochs check
        train(same, resume=one_epoch_run, progress=False, epochs=0)
    run = train(None, resume=one_epoch_run, progress=False, epochs=2)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 8
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


def test_a_new_run_needs_a_config():
    with pytest.raises(InfoganError, match="cfg=None is invalid for a new run"):
        train(None, progress=False)
