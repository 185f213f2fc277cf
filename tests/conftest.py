import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("INFOGAN_DATA_DIR", ROOT / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real, verified MNIST files (make test fetches them first)."""
    from infogan.training.data import fetch

    fetch(DATA_DIR, "mnist")
    return DATA_DIR


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, data_dir) -> Path:
    """One smoke training run shared by the tests that need a trained run."""
    from infogan.training.config import resolve
    from infogan.training.train import train

    out = tmp_path_factory.mktemp("runs")
    return train(resolve("smoke", data_dir=str(data_dir), out_dir=str(out)), progress=False)
