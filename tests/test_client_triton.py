"""The client against a real Triton server over gRPC (infogan.serve.server),
checked against onnxruntime in this process on the same repository."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException
from typer.testing import CliRunner

from infogan.cli import app
from infogan.client import Encoder, Generator
from infogan.client.triton_backend import server_status
from infogan.contract import GENERATOR_MODEL, InfoganError, LatentTemplate
from infogan.serve.server import TritonServer, free_port
from test_client_support import CATEGORY_PURITY, CATEGORY_TO_DIGIT, make_repository

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

def start_server(repo) -> TritonServer:
    return TritonServer(repo, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port()).start()


@pytest.fixture(scope="module")
def repo(module_tmp):
    return make_repository(module_tmp("repo"))


@pytest.fixture(scope="module")
def server(repo):
    s = start_server(repo)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def gen(server):
    with Generator.from_triton(server.grpc_url, timeout=30.0) as g:
        yield g


@pytest.fixture(scope="module")
def enc(server):
    with Encoder.from_triton(server.grpc_url, timeout=30.0) as e:
        yield e


def inferences(url: str, model: str) -> int:
    return sum(s["inference_count"] for s in server_status(url)["statistics"] if s["name"] == model)


def test_triton_reads_the_contract_from_the_config_parameters(gen):
    assert gen.template == LatentTemplate()
    assert gen.backend.max_batch_size > 0
    assert gen.info.category_to_label == tuple(CATEGORY_TO_DIGIT)


def test_generate_over_grpc_equals_onnxruntime(repo, gen):
    local = Generator.from_repository(repo)
    for kwargs in ({"seed": 0}, {"label": 7, "continuous": [-2.0, 1.5], "seed": 1}):
        np.testing.assert_allclose(gen.generate(5, **kwargs), local.generate(5, **kwargs), atol=1e-5, rtol=0)


def test_encode_over_grpc_equals_onnxruntime(repo, gen, enc):
    images = gen.generate(6, seed=2)
    remote, local = enc.encode(images), Encoder.from_repository(repo).encode(images)
    np.testing.assert_allclose(remote.class_probs, local.class_probs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(remote.continuous, local.continuous, atol=1e-5, rtol=0)
    np.testing.assert_allclose(remote.realness, local.realness, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(remote.labels, local.labels)


def test_request_larger_than_max_batch_size_is_split(repo, server, gen):
    max_batch = gen.backend.max_batch_size
    z = gen.latent(2 * max_batch + 3, seed=4)
    # the server itself refuses such a batch in one request ...
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    inputs = []
    for name in ("noise", "categorical", "continuous"):
        inputs.append(grpcclient.InferInput(name, list(z[name].shape), "FP32"))
        inputs[-1].set_data_from_numpy(z[name])
    with pytest.raises(InferenceServerException):
        raw.infer(GENERATOR_MODEL, inputs, client_timeout=30)
    raw.close()
    # ... the client splits it, and every piece comes back in order
    before = inferences(server.grpc_url, GENERATOR_MODEL)
    images = gen.run(z["noise"], z["categorical"], z["continuous"])
    local = Generator.from_repository(repo).run(z["noise"], z["categorical"], z["continuous"])
    np.testing.assert_allclose(images, local, atol=1e-5, rtol=0)
    assert inferences(server.grpc_url, GENERATOR_MODEL) - before == 2 * max_batch + 3
    for s in server_status(server.grpc_url)["statistics"]:
        assert all(b["batch_size"] <= max_batch for b in s["batches"])


def test_bad_input_sends_nothing_to_the_server(server, gen, enc):
    before = inferences(server.grpc_url, GENERATOR_MODEL)
    for bad in (lambda: gen.generate(2, category=10), lambda: gen.generate(2, continuous=[0.0, float("nan")]),
                lambda: gen.generate(0), lambda: enc.encode(np.zeros((1, 1, 27, 28), np.float32))):
        with pytest.raises(InfoganError):
            bad()
    assert inferences(server.grpc_url, GENERATOR_MODEL) == before


def test_unknown_model_names_the_models_the_server_has(server):
    with pytest.raises(InfoganError, match="infogan_generator"):
        Generator.from_triton(server.grpc_url, model="no_such_model", timeout=10.0)


def test_status_reports_liveness_models_and_batching(server, gen):
    gen.generate(3, seed=0)
    s = server_status(server.grpc_url)
    assert s["live"] and s["ready"]
    assert {(m["name"], m["version"], m["state"]) for m in s["models"]} >= {("infogan_generator", "1", "READY"), ("infogan_encoder", "1", "READY")}
    stats = {st["name"]: st for st in s["statistics"]}
    assert stats[GENERATOR_MODEL]["inference_count"] >= 3 and stats[GENERATOR_MODEL]["batches"]
    purity = {m["name"]: m["label_purity"] for m in s["models"]}[GENERATOR_MODEL]
    assert purity == {str(d): p for d, p in sorted(zip(CATEGORY_TO_DIGIT, CATEGORY_PURITY))}


def test_cli_status_and_generate_on_the_triton_backend(server, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["status", "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    assert "live     yes" in result.output and "infogan_encoder  version 1  READY" in result.output
    assert "purity by label  0: 98%  1: 97%" in result.output and "7: 62%" in result.output
    result = runner.invoke(app, ["generate", "-n", "12", "--seed", "0", "-o", str(tmp_path / "g.npy")],
                           env={"INFOGAN_TRITON_URL": server.grpc_url})
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "g.npy").shape == (12, 1, 28, 28)


def test_server_killed_mid_run_fails_clearly_within_the_deadline(repo):
    """A server of its own, killed (SIGKILL, no goodbye) while requests are in flight."""
    server = start_server(repo)
    timeout = 10.0
    outcome: dict = {}
    try:
        gen = Generator.from_triton(server.grpc_url, timeout=timeout)
        started = threading.Event()

        def keep_generating():
            try:
                while True:
                    gen.generate(gen.backend.max_batch_size + 1, seed=0)  # two requests in flight
                    started.set()
            except Exception as e:  # what the app would see
                outcome["error"], outcome["at"] = e, time.monotonic()

        worker = threading.Thread(target=keep_generating, daemon=True)
        worker.start()
        assert started.wait(60), "no request completed before the kill"
        killed_at = time.monotonic()
        os.killpg(server._proc.pid, signal.SIGKILL)  # the server and its backend stubs, at once
        worker.join(timeout + 30)
        assert not worker.is_alive(), "the client hung after the server died"
    finally:
        server.stop()
    assert isinstance(outcome["error"], InfoganError), repr(outcome["error"])
    assert "make serve" in str(outcome["error"]) or "timeout=" in str(outcome["error"])
    # the call that was running when the server died ended within its deadline
    # (plus the gRPC teardown), not after minutes of retrying
    assert outcome["at"] - killed_at < timeout + 2.0


def test_unavailable_is_retried_until_a_late_server_answers(repo):
    """The server comes up while the client is backing off: the call succeeds."""
    ports = {"grpc_port": free_port(), "http_port": free_port(), "metrics_port": free_port()}
    server = TritonServer(repo, **ports)
    starter = threading.Timer(0.3, server.start)
    starter.start()
    try:
        # backoff 0.1 s doubling: 8 retries wait up to 25 s, well inside the 60 s deadline
        gen = Generator.from_triton(server.grpc_url, timeout=60.0, retries=8)
        assert gen.generate(2, seed=0).shape == (2, 1, 28, 28)
        gen.close()
    finally:
        starter.join()
        server.stop()


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
def test_sixteen_clients_under_a_server_fault_fail_within_the_deadline_and_recover(repo, fault):
    """16 client objects generating at once; the server is killed (or frozen: it keeps its
    connections and never answers): every running call ends with a clear error within its
    deadline, none hangs; the server comes back (on the same ports) and the very same client
    objects answer again, without being rebuilt. Client 0's batches are split in two requests,
    which share the one deadline of the call."""
    server = start_server(repo)
    timeout, clients = 4.0, 16
    gens = [Generator.from_triton(server.grpc_url, timeout=timeout) for _ in range(clients)]
    sizes = [gens[0].backend.max_batch_size + 1] + [4] * (clients - 1)
    errors: list = [None] * clients
    ended: list = [None] * clients
    started = threading.Barrier(clients + 1, timeout=60)

    def run(i: int) -> None:
        gens[i].generate(sizes[i], seed=i)
        started.wait()
        try:
            while True:
                gens[i].generate(sizes[i], seed=i)
        except Exception as e:  # what the app would see
            errors[i], ended[i] = e, time.monotonic()

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    try:
        for w in workers:
            w.start()
        started.wait()
        time.sleep(0.3)
        faulted_at, pid = time.monotonic(), server.pid
        os.killpg(pid, getattr(signal, fault))
        for w in workers:
            w.join(timeout + 30)
        assert not any(w.is_alive() for w in workers), "a client hung"
        # a frozen server is not thawed: it would first drain what queued (Triton's exit waits up
        # to 30 s for requests in flight), which is not the fault under test
        if fault == "SIGSTOP":
            os.killpg(pid, signal.SIGKILL)
        server.stop()
        assert all(isinstance(e, InfoganError) and "\n" not in str(e) for e in errors), errors
        if fault == "SIGSTOP":  # connected but silent: the deadline ends every call, never a retry
            assert all(str(e).startswith("timeout=4 was exceeded") for e in errors), errors
        assert max(ended) - faulted_at < timeout + 2.0

        server = TritonServer(repo, **server.ports).start(120)  # back, where the clients expect it
        for i, gen in enumerate(gens):
            assert gen.generate(2, seed=i).shape == (2, 1, 28, 28)
    finally:
        for gen in gens:
            gen.close()
        server.stop()
