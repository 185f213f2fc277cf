"""Where the Triton bundled with nvidia-pytriton lies, and how to launch it bare.

Facts read from pytriton 0.7.0's own launcher (pytriton/triton.py,
pytriton/server/triton_server.py, pytriton/utils/distribution.py):
- the binary is site-packages/pytriton/tritonserver/bin/tritonserver;
- the Python backend is .../tritonserver/backends/python/ (libtriton_python.so,
  triton_python_backend_utils.py), shipped WITHOUT its stub: pytriton copies
  .../tritonserver/python_backend_stubs/<major.minor>/triton_python_backend_stub
  for the running interpreter into a copy of backends/python/;
- the shared libraries are in site-packages/nvidia_pytriton.libs/ (LD_LIBRARY_PATH);
- the environment's bin/ goes first on PATH, so the stub's embedded Python
  finds this environment's packages (numpy, onnxruntime, infogan).
We add the interpreter's own libpython directory to LD_LIBRARY_PATH, so the
stub links the libpython of the running Python, not some system one.

The bundled server has no native onnxruntime backend; Triton loads a
Python-based backend from <backend-dir>/onnxruntime/model.py instead, which is
our onnxruntime_backend.py.

The Python backend's files go into <backend-dir>/onnxruntime/, not <backend-dir>/python/:
Triton finds the library a Python-based backend needs in the backend's own folder, while
a model with `backend: "python"` (a model.py of its own, arbitrary code) looks in
python/ only and so fails to load, also where a polling server picks it up after the
start-time checks (model_repository/README.md, "Trust").
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from infogan.contract import InfoganError

SHM_DIR = "/dev/shm"


def pytriton_root() -> Path:
    spec = importlib.util.find_spec("pytriton")  # located, not imported: no side effects
    if spec is None or not spec.submodule_search_locations:
        raise InfoganError("pytriton is not installed: the local Triton server needs pip install 'infogan[serve]'")
    return Path(list(spec.submodule_search_locations)[0])


def tritonserver_binary() -> Path:
    return pytriton_root() / "tritonserver" / "bin" / "tritonserver"


def libs_directory() -> Path:
    return pytriton_root().parent / "nvidia_pytriton.libs"


def stub_path() -> Path:
    stubs = pytriton_root() / "tritonserver" / "python_backend_stubs"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = stubs / version / "triton_python_backend_stub"
    if not stub.is_file():
        have = sorted(p.name for p in stubs.iterdir()) if stubs.is_dir() else []
        raise InfoganError(f"python={version} is invalid: the bundled Triton has Python backend stubs for {have}")
    return stub


def backend_directory(dest: Path) -> Path:
    """Assemble dest/onnxruntime: the bundled Python backend, our stub and model.py; no dest/python."""
    onnxruntime_dir = dest / "onnxruntime"
    shutil.copytree(pytriton_root() / "tritonserver" / "backends" / "python", onnxruntime_dir,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(stub_path(), onnxruntime_dir / "triton_python_backend_stub")
    shutil.copy2(Path(__file__).with_name("onnxruntime_backend.py"), onnxruntime_dir / "model.py")
    return dest


def server_command(repository: Path, backends: Path, host: str, grpc_port: int, http_port: int,
                   metrics_port: int, shm_prefix: str, log_verbose: int = 0, poll_secs: int = 0) -> list[str]:
    # none: the models found at start are served until stop; poll: the repository is
    # rescanned every poll_secs and new versions replace old ones. Neither lets a client
    # load or unload models.
    control = ["--model-control-mode=poll", f"--repository-poll-secs={poll_secs}"] if poll_secs else ["--model-control-mode=none"]
    return [
        str(tritonserver_binary()),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        *control,
        # the configs are complete (export writes them); skipping auto-complete
        # cuts start-up from about 2.5 s to 0.4 s
        "--disable-auto-complete-config",
        "--exit-on-error=true",
        "--strict-readiness=true",
        f"--grpc-address={host}", f"--grpc-port={grpc_port}",
        f"--http-address={host}", f"--http-port={http_port}",
        f"--metrics-address={host}", f"--metrics-port={metrics_port}",
        "--allow-metrics=true", "--allow-gpu-metrics=false",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
        f"--log-verbose={log_verbose}",
    ]


def server_environment() -> dict[str, str]:
    env = dict(os.environ)
    libdirs = [str(libs_directory())]
    libpython = sysconfig.get_config_var("LIBDIR")
    if libpython and sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libdirs.append(libpython)
    if env.get("LD_LIBRARY_PATH"):
        libdirs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(libdirs)
    env["PATH"] = f"{Path(sys.exec_prefix) / 'bin'}:{env.get('PATH', '')}"
    return env


def shm_leftovers(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []
