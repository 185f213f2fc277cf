"""Every file the project loads with torch is loaded as tensors and plain data only:
a pickle that would run code when unpickled is refused in one line, and its code
never runs, whatever the installed torch's default for weights_only."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from infogan.contract import InfoganError  # noqa: E402
from infogan.training.checkpoint import load_checkpoint  # noqa: E402
from infogan.training.judge import load_or_train_judge  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class _Touch:
    """Unpickling this runs os.system: it stands for any code a crafted file could carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_files(folder: Path, name: str) -> list[tuple[Path, Path]]:
    """The same payload in torch's zip format and as a legacy bare pickle: (file, its marker)."""
    out = []
    for kind in ("zip", "legacy"):
        marker = folder / f"ran-{kind}"
        path = folder / kind / name
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"template": {}, "generator": _Touch(marker), "discriminator": {}}
        if kind == "zip":
            torch.save(payload, path)
        else:
            path.write_bytes(pickle.dumps(payload, protocol=2))  # torch's own protocol
        out.append((path, marker))
    return out


@pytest.fixture(params=["installed default", "default weights_only=False"])
def torch_default(request, monkeypatch):
    """The installed torch's default for weights_only (True since torch 2.6), and an older
    torch's (False), which this environment variable restores for calls that leave it unset."""
    if request.param == "default weights_only=False":
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def test_the_payload_runs_when_loaded_without_weights_only(tmp_path):
    # the premise: these files do run code when unpickled without the guard
    for path, marker in evil_files(tmp_path, "checkpoint.pt"):
        try:
            torch.load(path, weights_only=False)
        except RuntimeError:  # the bare pickle: torch reads it as its magic number, running it, then refuses
            pass
        assert marker.exists()


def test_a_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path, torch_default):
    for path, marker in evil_files(tmp_path, "checkpoint.pt"):
        with pytest.raises(InfoganError) as e:
            load_checkpoint(path)
        assert str(e.value).startswith(f"checkpoint={path} is corrupted or not a checkpoint: it holds objects "
                                       "other than tensors and plain data")
        assert "\n" not in str(e.value)
        assert not marker.exists()


def test_a_cached_judge_that_would_run_code_is_refused_in_one_line(tmp_path, torch_default):
    for path, marker in evil_files(tmp_path, "mnist/judge.pt"):  # data_dir/mnist/judge.pt is the cache
        with pytest.raises(InfoganError) as e:
            load_or_train_judge(path.parent.parent, "mnist")
        assert str(e.value).startswith(f"judge={path} is corrupted or not a judge: it holds objects "
                                       "other than tensors and plain data")
        assert str(e.value).endswith(f"delete {path} and the next evaluation trains it again")
        assert "\n" not in str(e.value)
        assert not marker.exists()


def test_a_judge_cached_as_a_state_dict_still_loads(tmp_path):
    from infogan.training.judge import _judge_net

    torch.manual_seed(0)
    net = _judge_net()
    (tmp_path / "mnist").mkdir()
    torch.save(net.state_dict(), tmp_path / "mnist" / "judge.pt")
    loaded = load_or_train_judge(tmp_path, "mnist")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))


def test_no_torch_load_in_the_project_goes_without_weights_only_true():
    sources = [p for d in ("infogan", "training", "export", "client", "serve", "bench", "explore")
               for p in (ROOT / d).rglob("*.py")]
    calls = [(p, m.group(0)) for p in sources for m in re.finditer(r"torch\.load\([^)]*\)", p.read_text())]
    assert calls, "torch.load is called somewhere"
    assert [(str(p), c) for p, c in calls if "weights_only=True" not in c] == []
