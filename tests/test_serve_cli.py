"""`infogan serve` as a user runs it: endpoints printed, clean stop on SIGTERM or Ctrl-C, one-line
refusals, the addresses its sockets really listen on, and --poll-secs serving a new export."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
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


def listening_addresses(port: int) -> set[str]:
    """The addresses a TCP socket listens on at `port`, from the kernel's own tables (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)  # the header
            for line in f:
                local, state = line.split()[1], line.split()[3]
                address, local_port = local.split(":")
                if state != "0A" or int(local_port, 16) != port:  # 0A: LISTEN
                    continue
                raw = bytes.fromhex(address)
                # the kernel prints the address as 32-bit words in this machine's byte order
                words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
                raw = b"".join(w[::-1] if sys.byteorder == "little" else w for w in words)
                ip = ipaddress.ip_address(raw)
                # gRPC binds an IPv6 socket to ::ffff:127.0.0.1, which takes IPv4 127.0.0.1 alone
                found.add(str(getattr(ip, "ipv4_mapped", None) or ip))
    return found


@contextmanager
def serving(repository: Path, *args: str):
    """`infogan serve` on free ports, as a subprocess: (process, ports, printed lines) once it says
    it serves; stopped with SIGTERM (killed if it must) on the way out."""
    ports = {"grpc": free_port(), "http": free_port(), "metrics": free_port()}
    proc = subprocess.Popen(
        [INFOGAN, "serve", "--repository", str(repository), "--grpc-port", str(ports["grpc"]),
         "--http-port", str(ports["http"]), "--metrics-port", str(ports["metrics"]), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        printed = []
        for line in proc.stdout:
            printed.append(line.rstrip())
            if "Ctrl-C" in line:
                break
        assert printed and "Ctrl-C" in printed[-1], (printed, proc.stderr.read() if proc.poll() is not None else "")
        yield proc, ports, printed
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_serve_prints_endpoints_and_stops_cleanly_on_signal(tmp_path, stop_signal):
    import tritonclient.grpc as grpcclient

    write_toy_repository(tmp_path)
    with serving(tmp_path) as (proc, ports, printed):
        text = "\n".join(printed)
        assert f"gRPC     127.0.0.1:{ports['grpc']}" in text, text
        assert f"HTTP     http://127.0.0.1:{ports['http']}" in text
        assert f"models   {ENCODER_MODEL}, {GENERATOR_MODEL}" in text
        # by default every socket listens on loopback only, not on Triton's own default 0.0.0.0
        assert {name: listening_addresses(port) for name, port in ports.items()} == {
            name: {"127.0.0.1"} for name in ports}

        with grpcclient.InferenceServerClient(f"127.0.0.1:{ports['grpc']}") as client:
            assert client.is_server_ready() and client.is_model_ready(GENERATOR_MODEL)
        assert processes_of(proc.pid)

        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "stopped"
    assert processes_of(proc.pid) == []
    assert [n for n in os.listdir("/dev/shm") if n.startswith(f"infogan_triton_{proc.pid}_")] == []


# what each address may show up as in the kernel's tables: gRPC takes 0.0.0.0 as its
# dual-stack wildcard ::, which listens on every IPv4 and IPv6 address alike
WILDCARD = {"0.0.0.0", "::"}


@pytest.mark.slow
@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.2"], ids=["every-interface", "one-address"])
def test_host_moves_all_three_listening_sockets_to_the_given_address_and_warns(tmp_path, host):
    write_toy_repository(tmp_path)
    with serving(tmp_path, "--host", host) as (proc, ports, _):
        listening = {name: listening_addresses(port) for name, port in ports.items()}
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    allowed = WILDCARD if host == "0.0.0.0" else {host}
    assert all(addresses and addresses <= allowed for addresses in listening.values()), listening
    assert err.startswith(f"warning: host={host} ")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_poll_secs_serves_a_new_export_while_generator_and_encoder_clients_see_no_failed_request(tmp_path):
    """`infogan serve --poll-secs 1`, then a new export published while a generator client and
    an encoder client keep calling: both models switch to version 2 without a restart, and no
    request fails. The clients retry nothing (retries=0), so an UNAVAILABLE during the switch
    would count as a failure here instead of being hidden by a retry. The models are the toy
    repository's (another seed for version 2), published by export's own publishing step."""
    import tritonclient.grpc as grpcclient

    from infogan.client import Encoder, Generator
    from infogan.export.repository import StagedModel, publish, read_config

    repo, scratch = tmp_path / "model_repository", tmp_path / "scratch"
    write_toy_repository(repo, seed=0)
    staged = [StagedModel(m, path.read_bytes(), read_config(scratch / m / "config.pbtxt"))
              for m, path in write_toy_repository(scratch, seed=1).items()]
    with serving(repo, "--poll-secs", "1") as (proc, ports, _):
        url = f"127.0.0.1:{ports['grpc']}"
        gen = Generator.from_triton(url, timeout=30, retries=0)
        enc = Encoder.from_triton(url, timeout=30, retries=0)
        images = gen.generate(8, seed=0)
        calls = {"generate": lambda: gen.generate(8, seed=0), "encode": lambda: enc.encode(images)}
        answers, failures, stop = {k: 0 for k in calls}, [], threading.Event()

        def keep_calling(kind: str) -> None:
            while not stop.is_set():
                try:
                    calls[kind]()
                    answers[kind] += 1
                except Exception as e:  # noqa: BLE001  (every failure counts)
                    failures.append(f"{kind}: {e}")

        workers = [threading.Thread(target=keep_calling, args=(k,)) for k in calls]
        for w in workers:
            w.start()
        try:
            deadline = time.monotonic() + 120
            while min(answers.values()) < 3:  # both clients answering version 1
                assert not failures and time.monotonic() < deadline, (failures[:3], answers)
                time.sleep(0.05)
            assert publish(repo, staged) == 2
            with grpcclient.InferenceServerClient(url) as client:
                served = lambda m, v: client.is_model_ready(m, v)  # noqa: E731
                while not all(served(m, "2") and not served(m, "1") for m in (GENERATOR_MODEL, ENCODER_MODEL)):
                    assert time.monotonic() < deadline, "the new export was never served alone"
                    time.sleep(0.2)
            switched = dict(answers)
            while min(answers[k] - switched[k] for k in calls) < 5:  # both keep answering after the switch
                assert not failures and time.monotonic() < deadline + 60, (failures[:3], answers)
                time.sleep(0.1)
        finally:
            stop.set()
            for w in workers:
                w.join(60)
        served_images = gen.generate(8, seed=0)
        gen.close()
        enc.close()
    assert failures == [], failures[:3]
    # what answers now is version 2's file: the new checkpoint, not a restart of the old
    np.testing.assert_allclose(served_images, Generator.from_repository(repo, version=2).generate(8, seed=0), atol=1e-5)
    assert np.abs(served_images - images).max() > 0.01


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
