"""A runtime-only install (`pip install .`, no extras) has no torch: its commands that
need an extra say which, in one line, and those of the runtime still run.

The install is stood in for by this environment with the extras' modules made
unfindable in a fresh interpreter: every finder answers "not found" for them, as
in an environment where they were never installed (import raises the same
ModuleNotFoundError, importlib.util.find_spec returns None)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infogan.cli import EXTRA_OF_MODULE, missing_extra

ROOT = Path(__file__).resolve().parents[1]

RUNTIME_ONLY = """
import sys
NOT_INSTALLED = {not_installed!r}

class NotInstalled:
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in NOT_INSTALLED:
            return None
        return self.finder.find_spec(name, path, target)
    def __getattr__(self, attr):
        return getattr(self.finder, attr)

sys.meta_path[:] = [NotInstalled(f) for f in sys.meta_path]
sys.argv = ["infogan", *{args!r}]
from infogan.cli import main
main()
"""


def run_without_extras(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = RUNTIME_ONLY.format(not_installed=sorted(EXTRA_OF_MODULE) + ["gradio_client"], args=args)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("args,module", [
    (["train", "--smoke"], "torch"),
    (["evaluate", "--run", "nothing"], "torch"),
    (["sweep", "0", "--out-dir", "sweep", "--results", "RESULTS.md"], "torch"),
    (["export", "--run", "nothing", "--repository", "repo"], "onnx"),  # export's pipeline imports onnx first
    (["bench", "--quick", "--out", "bench"], "torch"),
])
def test_a_command_that_needs_torch_names_the_train_extra_in_one_line(args, module, tmp_path):
    out = run_without_extras(args, tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr == (f"error: infogan {args[0]} needs the train extra: pip install 'infogan[train]' "
                          f"({module} is not installed)\n")
    assert "Traceback" not in out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == []  # refused before it wrote anything


def test_the_runtime_commands_still_run_without_the_extras(tmp_path):
    from test_client_support import make_repository

    repo = make_repository(tmp_path / "made")
    out = run_without_extras(["generate", "-n", "2", "--backend", "onnx", "--repository", str(repo),
                              "-o", str(tmp_path / "x.npy")], tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x.npy").is_file()
    # the local Triton server's extra is named by serve itself, before anything starts
    out = run_without_extras(["serve", "--repository", str(repo)], tmp_path)
    assert out.returncode == 2 and "pip install 'infogan[serve]'" in out.stderr and "Traceback" not in out.stderr


def test_a_missing_module_outside_the_extras_is_a_bug_and_keeps_its_traceback():
    assert missing_extra(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None


def test_the_modules_named_are_exactly_those_of_pyprojects_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    module_of = {"nvidia-pytriton": "pytriton"}  # distribution names that differ from their module's
    for extra in set(EXTRA_OF_MODULE.values()):
        names = {req.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip()
                 for req in extras[extra]}
        assert {module_of.get(n, n) for n in names} == {m for m, e in EXTRA_OF_MODULE.items() if e == extra}
