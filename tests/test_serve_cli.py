"""`infogan serve` as a user runs it: endpoints printed, clean stop on SIGTERM or Ctrl-C, one-line refusals."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infogan.contract import ENCODER_MODEL, GENERATOR_MODEL
from infogan.serve.server import free_port
from toy_repository import write_toy_repository

INFOGAN = str(Path(sys.executable).with_name("infogan"))


def run_serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([INFOGAN, "serve", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_empty_repository_is_refused_in_one_line(tmp_path):
    done = run_serve("--repository", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: repository={tmp_path} is invalid: it holds no models (no <model>/config.pbtxt); run make export first"
    ]


def test_binding_beyond_loopback_says_so_and_loopback_stays_quiet(tmp_path):
    exposed = run_serve("--repository", str(tmp_path), "--host", "0.0.0.0")
    warning, error = exposed.stderr.strip().splitlines()
    assert warning.startswith("warning: host=0.0.0.0 exposes the server") and "127.0.0.1" in warning
    assert error.startswith("error: repository=") and exposed.returncode == 2
    quiet = run_serve("--repository", str(tmp_path))
    assert not any(line.startswith("warning:") for line in quiet.stderr.splitlines())


def test_taken_port_is_refused_in_one_line_before_launch(tmp_path):
    write_toy_repository(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = run_serve("--grpc-port", str(port), "--http-port", str(free_port()),
                         "--metrics-port", str(free_port()), env={"INFOGAN_MODEL_REPOSITORY": str(tmp_path)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: grpc_port={port} is invalid: port is taken on 127.0.0.1")


def processes_of(pid: int) -> list[int]:
    """Triton and stub processes started by the serve process `pid` (their argv carries its shm prefix)."""
    marker = f"infogan_triton_{pid}_".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_serve_prints_endpoints_and_stops_cleanly_on_signal(tmp_path, stop_signal):
    import tritonclient.grpc as grpcclient

    write_toy_repository(tmp_path)
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [INFOGAN, "serve", "--repository", str(tmp_path), "--grpc-port", str(grpc_port),
         "--http-port", str(http_port), "--metrics-port", str(metrics_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        printed = []
        for line in proc.stdout:
            printed.append(line.rstrip())
            if "Ctrl-C" in line:
                break
        text = "\n".join(printed)
        assert f"gRPC     127.0.0.1:{grpc_port}" in text, text
        assert f"HTTP     http://127.0.0.1:{http_port}" in text
        assert f"models   {ENCODER_MODEL}, {GENERATOR_MODEL}" in text

        with grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
            assert client.is_server_ready() and client.is_model_ready(GENERATOR_MODEL)
        assert processes_of(proc.pid)

        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "stopped"
    assert processes_of(proc.pid) == []
    assert [n for n in os.listdir("/dev/shm") if n.startswith(f"infogan_triton_{proc.pid}_")] == []


@pytest.mark.slow
def test_a_killed_owner_takes_its_server_down_with_it(tmp_path):
    """SIGKILL gives the owner no chance to stop Triton; Triton must not outlive it."""
    write_toy_repository(tmp_path)
    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from infogan.serve.server import TritonServer, free_port\n"
         f"s = TritonServer({str(tmp_path)!r}, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port()).start(60)\n"
         "print(s.workdir, flush=True)\n"
         "time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        workdir = Path(owner.stdout.readline().strip())  # printed once ready
        assert workdir.is_dir() and processes_of(owner.pid)
    finally:
        owner.kill()
        owner.wait()
    # Triton receives SIGTERM and unloads its models; wait for it, bounded by the deadline
    deadline = time.monotonic() + 60
    while processes_of(owner.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of(owner.pid) == []
    assert [n for n in os.listdir("/dev/shm") if n.startswith(f"infogan_triton_{owner.pid}_")] == []
    shutil.rmtree(workdir)  # the one thing a killed owner cannot clean up
