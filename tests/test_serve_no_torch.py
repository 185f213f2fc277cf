"""The serving side imports no torch: the server API, the CLI command, and the
backend that runs inside Triton's stub processes."""

from __future__ import annotations

import json
import subprocess
import sys


def torch_modules_after(code: str) -> list[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_server_its_command_and_the_backend_pieces_imports_no_torch():
    assert torch_modules_after(
        "import infogan.serve, infogan.serve.server, infogan.serve.commands, infogan.serve.launch, "
        "infogan.serve.batching"
    ) == []
