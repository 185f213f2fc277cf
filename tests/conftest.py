import os
import shutil
from pathlib import Path

import pytest

from infogan import defaults

ROOT = Path(__file__).resolve().parents[1]
# where `infogan data` (make test) puts it: $INFOGAN_DATA_DIR, or infogan's default under the repository
DATA_DIR = Path(os.environ.get(defaults.ENV_DATA_DIR, ROOT / defaults.DATA_DIR))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real, verified MNIST files (make test fetches them first)."""
    from infogan.training.data import fetch

    fetch(DATA_DIR, "mnist")
    return DATA_DIR


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory, request):
    """mktemp for one module's shared files: a run, a model repository (50-250 MB each, as the
    models are full size). The folders go when the module's tests end, unless one of them failed,
    so the suite holds one module's files at a time instead of gigabytes (a CI machine once ran out
    of disk part-way; tmp_path_retention_policy in pyproject.toml does the same for each test's tmp_path)."""
    made: list[Path] = []

    def mktemp(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    failed_before = request.session.testsfailed
    yield mktemp
    if request.session.testsfailed == failed_before:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def checkpoints(monkeypatch):
    """(run name, step, generator weights) at every checkpoint a run writes."""
    from infogan.training import train as training

    seen, write = [], training.Run.checkpoint

    def recording(run, calibrated=None):
        seen.append((run.cfg.run_name, run.step, {k: v.clone() for k, v in run.g.state_dict().items()}))
        write(run, calibrated)

    monkeypatch.setattr(training.Run, "checkpoint", recording)
    return seen


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, data_dir) -> Path:
    """One smoke training run shared by the tests that need a trained run."""
    from infogan.training.config import resolve
    from infogan.training.train import train

    out = tmp_path_factory.mktemp("runs")
    return train(resolve("smoke", data_dir=str(data_dir), out_dir=str(out)), progress=False)


@pytest.fixture(scope="session")
def explore_repo(tmp_path_factory) -> Path:
    """A repository exported by export's own pipeline (random weights) for the explorer's tests."""
    from test_client_support import make_repository

    return make_repository(tmp_path_factory.mktemp("explore"))


@pytest.fixture(scope="session")
def explorer(explore_repo):
    from infogan.explore.views import Explorer

    ex = Explorer.open(explore_repo)
    yield ex
    ex.close()


@pytest.fixture(scope="session")
def explore_page(explorer) -> str:
    """The explorer's page, live on a free loopback port: its URL."""
    pytest.importorskip("gradio")
    from infogan.explore.app import launch
    from infogan.serve.server import free_port

    blocks, url = launch(explorer, port=free_port(), block=False)
    yield url
    blocks.close()
