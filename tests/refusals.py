"""How a training option's bad value must be refused, checked the same way for every option:
resolve() raises one InfoganError naming it, and `infogan train` prints that one line and exits
non-zero before it makes a run folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from infogan.contract import InfoganError
from infogan.training.config import resolve


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
