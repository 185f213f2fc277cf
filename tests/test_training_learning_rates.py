"""--lr-d, --lr-g and --lr-q: Adam's learning rate of each optimiser group, from the command a user
types to the optimiser a run saves; a rate outside (0, 1] is one line naming it."""

import subprocess
import sys

import pytest
from option_checks import assert_train_refuses

from infogan.training.checkpoint import load_checkpoint


def test_each_rate_given_reaches_its_group_of_the_saved_optimisers(tmp_path, data_dir):
    subprocess.run([sys.executable, "-m", "infogan.cli", "train", "--smoke", "--data-dir", str(data_dir),
                    "--runs-dir", str(tmp_path), "--run-name", "r", "--no-progress",
                    "--lr-d", "3e-4", "--lr-g", "7e-4", "--lr-q", "5e-4"], check=True, capture_output=True, timeout=300)
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert (ckpt["config"]["lr_d"], ckpt["config"]["lr_g"], ckpt["config"]["lr_q"]) == (3e-4, 7e-4, 5e-4)
    # D's Adam: the trunk and D head, then the Q-head (the original code's wiring); G's Adam: G
    assert [group["lr"] for group in ckpt["opt_d"]["param_groups"]] == [3e-4, 5e-4]
    assert [group["lr"] for group in ckpt["opt_g"]["param_groups"]] == [7e-4]


@pytest.mark.parametrize("option, value", [("--lr-q", "0"), ("--lr-d", "-1e-4"), ("--lr-g", "2")])
def test_a_rate_outside_zero_to_one_is_refused_in_one_line(tmp_path, option, value):
    name = option[2:].replace("-", "_")
    assert_train_refuses(tmp_path, option, value,
                         f"error: {name}={float(value)} is invalid: must be in (0, 1], Adam's learning rate")
