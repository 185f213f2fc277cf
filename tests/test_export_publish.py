"""export_run publishes checked models into a Triton repository: metadata, config.pbtxt
against the ONNX graph (Triton's own schema), versions, pruning, atomicity, locking."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from infogan.contract import (
    ENCODER_MODEL,
    GENERATOR_MODEL,
    META_CATEGORY_TO_LABEL,
    META_CHECKPOINT_SHA256,
    META_LABEL_NAMES,
    META_METRICS,
    META_PRECISION,
    META_TEMPLATE,
    META_VERSION,
    InfoganError,
    LatentTemplate,
    model_versions,
)
from infogan.export import parity, repository
from infogan.export.pipeline import export_run, read_metadata
from test_export_support import ACCURACY, CATEGORY_TO_DIGIT, LABEL_NAMES, make_run, snapshot

MODELS = (GENERATOR_MODEL, ENCODER_MODEL)
ONNX_TO_TRITON = {onnx.TensorProto.FLOAT: mc.TYPE_FP32, onnx.TensorProto.FLOAT16: mc.TYPE_FP16,
                  onnx.TensorProto.INT64: mc.TYPE_INT64}


@pytest.fixture(scope="module")
def run(module_tmp) -> Path:
    return make_run(module_tmp("run"))


@pytest.fixture(scope="module")
def published(run, module_tmp) -> Path:
    repo = module_tmp("published") / "model_repository"
    assert export_run(run, repo).version == 1
    return repo


def copy_of(published: Path, tmp_path: Path) -> Path:
    """A repository holding version 1, as the first export of `run` left it (an export costs seconds; a copy does not)."""
    return Path(shutil.copytree(published, tmp_path / "repo"))


def read_config(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def test_a_first_export_publishes_both_models_as_version_1(published):
    for m in MODELS:
        assert model_versions(published / m) == [1]
        assert (published / m / "1" / "model.onnx").is_file()
        assert (published / m / "config.pbtxt").is_file()
    # nothing else: no staging folders or lock files left behind
    assert sorted(p.name for p in published.iterdir()) == sorted(MODELS)
    assert all(sorted(p.name for p in (published / m).iterdir()) == ["1", "config.pbtxt"] for m in MODELS)


def test_onnx_metadata_carries_the_contract_mapping_metrics_and_checkpoint_hash(published, run):
    from infogan.training.checkpoint import file_sha256

    for m in MODELS:
        meta = read_metadata(published / m / "1" / "model.onnx")
        assert LatentTemplate.from_json(meta[META_TEMPLATE]) == LatentTemplate()
        assert json.loads(meta[META_CATEGORY_TO_LABEL]) == CATEGORY_TO_DIGIT
        assert json.loads(meta[META_LABEL_NAMES]) == LABEL_NAMES
        metrics = json.loads(meta[META_METRICS])
        assert metrics["accuracy"] == ACCURACY and metrics["images_seen"] == 896 and metrics["step"] == 7
        assert metrics["parity_max_abs_diff"] <= parity.PARITY_ATOL
        assert meta[META_CHECKPOINT_SHA256] == file_sha256(run / "checkpoint.pt")
        assert meta[META_VERSION] and meta[META_PRECISION] == "fp32"


def test_config_parameters_repeat_the_onnx_metadata_for_grpc_clients(published):
    for m in MODELS:
        meta = read_metadata(published / m / "1" / "model.onnx")
        params = {k: v.string_value for k, v in read_config(published / m / "config.pbtxt").parameters.items()}
        assert params == meta


def test_config_names_dtypes_and_dims_match_the_onnx_graph(published):
    for m in MODELS:
        cfg = read_config(published / m / "config.pbtxt")
        graph = onnx.load(str(published / m / "1" / "model.onnx")).graph
        assert cfg.name == m and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 1024
        for tensors, values in ((cfg.input, graph.input), (cfg.output, graph.output)):
            assert [t.name for t in tensors] == [v.name for v in values]
            for t, v in zip(tensors, values):
                tt = v.type.tensor_type
                assert t.data_type == ONNX_TO_TRITON[tt.elem_type]
                assert tt.shape.dim[0].dim_param  # the batch axis, which Triton's dims leave out
                assert list(t.dims) == [d.dim_value for d in tt.shape.dim[1:]]


def test_config_batches_dynamically_warms_up_and_serves_the_latest_version(published):
    for m in MODELS:
        cfg = read_config(published / m / "config.pbtxt")
        assert cfg.HasField("dynamic_batching")  # on: queued requests run as one batch
        assert tuple(cfg.dynamic_batching.preferred_batch_size) == repository.PREFERRED_BATCH_SIZES
        assert cfg.dynamic_batching.max_queue_delay_microseconds == repository.MAX_QUEUE_DELAY_US  # a lone request never waits
        assert all(b <= cfg.max_batch_size for b in cfg.dynamic_batching.preferred_batch_size)
        assert cfg.version_policy.latest.num_versions == 1
        (group,) = cfg.instance_group
        assert group.kind == mc.ModelInstanceGroup.KIND_AUTO and group.count == 1
        (warm,) = cfg.model_warmup
        assert sorted(warm.inputs) == sorted(t.name for t in cfg.input)
        for t in cfg.input:
            assert list(warm.inputs[t.name].dims) == list(t.dims) and warm.inputs[t.name].zero_data
        assert not cfg.optimization.execution_accelerators.gpu_execution_accelerator


def test_tensorrt_option_adds_the_gpu_accelerator(run, tmp_path):
    export_run(run, tmp_path / "repo", tensorrt=True)
    for m in MODELS:
        accel = read_config(tmp_path / "repo" / m / "config.pbtxt").optimization.execution_accelerators
        (trt,) = accel.gpu_execution_accelerator
        assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == "FP32"


def test_each_export_is_the_next_version_and_old_versions_are_pruned(run, published, tmp_path):
    repo = copy_of(published, tmp_path)  # version 1
    assert [export_run(run, repo, keep_versions=2).version for _ in range(2)] == [2, 3]
    for m in MODELS:
        assert model_versions(repo / m) == [2, 3]


def test_an_export_failing_at_the_parity_check_leaves_the_repository_byte_for_byte_unchanged(run, published, tmp_path, monkeypatch):
    repo = copy_of(published, tmp_path)
    before = snapshot(repo)
    bad = parity.ParityReport("generator", 0.5, "image", 7)
    monkeypatch.setattr(parity, "generator_parity", lambda *a, **k: bad)
    with pytest.raises(InfoganError, match="nothing was published"):
        export_run(run, repo)
    assert snapshot(repo) == before


def test_a_failure_while_publishing_the_second_model_rolls_back_the_first(run, published, tmp_path, monkeypatch):
    repo = copy_of(published, tmp_path)
    before = snapshot(repo)
    real = repository.write_atomic

    def fail_on_encoder(path, data):
        if path.parent.name == ENCODER_MODEL:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(repository, "write_atomic", fail_on_encoder)
    with pytest.raises(OSError):
        export_run(run, repo)
    monkeypatch.undo()
    assert snapshot(repo) == before
    assert export_run(run, repo).version == 2  # and the next export goes on from there


def test_a_failed_first_export_does_not_even_create_the_repository(run, tmp_path, monkeypatch):
    monkeypatch.setattr(parity, "encoder_parity", lambda *a, **k: parity.ParityReport("encoder", 1.0, "realness", 1))
    with pytest.raises(InfoganError):
        export_run(run, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


KILL_SCRIPT = """
import os, signal, sys
from infogan.export import parity
from infogan.export.pipeline import export_run
real = parity.encoder_parity
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)  # killed halfway: the generator is exported, the encoder is not
parity.encoder_parity = die
export_run(sys.argv[1], sys.argv[2])
"""


def test_an_export_killed_halfway_leaves_the_repository_unchanged(run, published, tmp_path):
    repo = copy_of(published, tmp_path)
    before = snapshot(repo)
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(run), str(repo)], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(repo) == before


PUBLISH_KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from infogan.export import repository
repo, exported, kill_at, calls = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), [0]
# what export_run stages for that run: its checked model bytes and configs, generator first
staged = [repository.StagedModel(m, (exported / m / "1" / "model.onnx").read_bytes(),
                                 repository.read_config(exported / m / "config.pbtxt")) for m in sys.argv[4:]]

def killing(real):
    def step(*args, **kwargs):
        out = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == kill_at:  # right after the kill_at-th rename of publishing
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return step

os.rename, os.replace = killing(os.rename), killing(os.replace)
repository.publish(repo, staged)
"""
KILL_POINTS = {"generator-version": 1, "generator-config": 2, "encoder-version": 3, "encoder-config": 4}


@pytest.fixture(scope="module")
def second(module_tmp) -> Path:
    """Another run (another checkpoint), exported once into a scratch repository: what a kill-point test publishes."""
    root = module_tmp("second")
    export_run(make_run(root / "run", seed=1), root / "repository")
    return root / "repository"


def publish_killed(repo: Path, exported: Path, kill_at: int) -> None:
    """Publish what was exported into `exported` over `repo`, in a process SIGKILLed after the kill_at-th rename."""
    proc = subprocess.run([sys.executable, "-c", PUBLISH_KILL_SCRIPT, str(repo), str(exported), str(kill_at), *MODELS],
                          capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def staged_from(exported: Path) -> list[repository.StagedModel]:
    return [repository.StagedModel(m, (exported / m / "1" / "model.onnx").read_bytes(),
                                   repository.read_config(exported / m / "config.pbtxt")) for m in MODELS]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", KILL_POINTS.values(), ids=KILL_POINTS.keys())
def test_an_export_killed_at_any_rename_leaves_a_servable_repository_that_the_next_export_repairs(
        published, second, tmp_path, kill_at):
    """Publishing renames, per model, the version folder into place, then config.pbtxt. A SIGKILL
    after any of them leaves every model's newest version complete and loadable; between the
    generator and the encoder the generator is one version ahead (the window the repository
    README describes), which the pair check names from each model.onnx's own checkpoint hash,
    though config.pbtxt still describes the previous version after a version rename; the next
    export brings both to one new version from one checkpoint.

    The killed process runs publishing alone, on what a real export of another run staged
    (export_run's steps before publish touch no repository; their kill is the test above)."""
    from infogan.client import Encoder, Generator
    from infogan.client.info import MixedPair, check_pair

    repo = copy_of(published, tmp_path)
    publish_killed(repo, second, kill_at)

    newest = {m: model_versions(repo / m)[-1] for m in MODELS}
    assert newest[GENERATOR_MODEL] == 2 and newest[ENCODER_MODEL] == (2 if kill_at >= 3 else 1)
    sha = {m: read_metadata(repo / m / str(newest[m]) / "model.onnx")[META_CHECKPOINT_SHA256] for m in MODELS}
    config_sha = {m: read_config(repo / m / "config.pbtxt").parameters[META_CHECKPOINT_SHA256].string_value
                  for m in MODELS}  # parses: never half written
    for m in MODELS:
        onnx.checker.check_model(str(repo / m / str(newest[m]) / "model.onnx"))
    # after a version rename (1, 3) that model's config still names the previous checkpoint
    assert (config_sha[GENERATOR_MODEL] == sha[GENERATOR_MODEL]) == (kill_at != 1)
    assert (config_sha[ENCODER_MODEL] == sha[ENCODER_MODEL]) == (kill_at != 3)

    mixed = kill_at < 3
    assert (sha[GENERATOR_MODEL] != sha[ENCODER_MODEL]) == mixed
    line = check_pair(repo)
    if mixed:
        assert line.startswith(f"{GENERATOR_MODEL} version 2 and {ENCODER_MODEL} version 1 come from different "
                               "checkpoints") and "infogan export" in line and "\n" not in line
    else:
        assert line is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gen, enc = Generator.from_repository(repo), Encoder.from_repository(repo)
    assert [str(w.message) for w in caught if w.category is MixedPair] == ([line, line] if mixed else [])
    enc.encode(gen.generate(2, seed=0))

    # the export run again: its staged models are the same bytes, published anew
    assert repository.publish(repo, staged_from(second)) == 3
    shas = {m: read_metadata(repo / m / "3" / "model.onnx")[META_CHECKPOINT_SHA256] for m in MODELS}
    assert set(shas.values()) == {sha[GENERATOR_MODEL]} and check_pair(repo) is None
    for m in MODELS:
        assert not [p.name for p in (repo / m).iterdir() if p.name.startswith(".")]  # no leftovers


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_status_names_the_mixed_pair_a_kill_after_the_first_rename_leaves_though_its_configs_agree(
        published, second, tmp_path):
    """Killed right after the generator's version folder appeared: Triton serves generator 2 and
    encoder 1, and both configs still name the first checkpoint; `infogan status` reads the
    served versions' own model.onnx and names the pair (where the configs name one of that
    repository's files: otherwise it is not the served one, and the configs' hashes stand)."""
    from typer.testing import CliRunner

    from infogan.cli import app
    from infogan.client.info import check_pair
    from infogan.client.triton_backend import server_status
    from infogan.serve.server import TritonServer, free_port

    repo = copy_of(published, tmp_path)
    publish_killed(repo, second, 1)
    first_sha = read_metadata(published / GENERATOR_MODEL / "1" / "model.onnx")[META_CHECKPOINT_SHA256]
    with TritonServer(repo, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port()) as server:
        import tritonclient.grpc as grpcclient

        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            served_config = client.get_model_config(GENERATOR_MODEL, "2").config
        status = server_status(server.grpc_url, repository=repo)
        elsewhere = server_status(server.grpc_url, repository=second)  # not the served repository
        printed = CliRunner().invoke(app, ["status", "--url", server.grpc_url, "--repository", str(repo)])
    assert served_config.parameters[META_CHECKPOINT_SHA256].string_value == first_sha
    ready = {m["name"]: m["version"] for m in status["models"] if m["state"] == "READY"}
    assert ready == {GENERATOR_MODEL: "2", ENCODER_MODEL: "1"}
    assert status["pair_mismatch"] == f"warning: {check_pair(repo)}"
    assert printed.exit_code == 0 and status["pair_mismatch"] in printed.output.splitlines()
    # a repository whose files the served configs do not name is not read as the server's
    assert {m["checkpoint_sha256"] for m in elsewhere["models"] if m["state"] == "READY"} == {first_sha}


def test_a_different_latent_template_is_refused_unless_forced(run, published, tmp_path):
    repo = copy_of(published, tmp_path)
    export_run(run, repo)
    before = snapshot(repo)
    other = make_run(tmp_path / "other", LatentTemplate(categorical=(10,), continuous=((-1.0, 1.0),), noise_dim=20))
    with pytest.raises(InfoganError, match="--force"):
        export_run(other, repo)
    assert snapshot(repo) == before

    assert export_run(other, repo, force=True).version == 3
    for m in MODELS:
        # the older versions no longer fit the config, so none is kept
        assert model_versions(repo / m) == [3]
        cfg = read_config(repo / m / "config.pbtxt")
        assert LatentTemplate.from_json(cfg.parameters[META_TEMPLATE].string_value).noise_dim == 20


def test_a_second_export_waits_for_the_lock_and_gives_up_with_a_clear_error(published, tmp_path):
    repo = copy_of(published, tmp_path)
    before = snapshot(repo)
    held, release = threading.Event(), threading.Event()

    def hold():
        with repository.repository_lock(repo):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(10)
        staged = [repository.StagedModel(GENERATOR_MODEL, b"x", read_config(repo / GENERATOR_MODEL / "config.pbtxt"))]
        with pytest.raises(InfoganError, match="lock"):
            repository.publish(repo, staged, lock_timeout_s=0.3)
    finally:
        release.set()
        t.join()
    assert snapshot(repo) == before


def test_leftovers_of_a_killed_publish_are_cleared_by_the_next_export(run, published, tmp_path):
    repo = copy_of(published, tmp_path)
    (repo / GENERATOR_MODEL / ".staging-dead").mkdir()
    (repo / GENERATOR_MODEL / ".staging-dead" / "model.onnx").write_bytes(b"half")
    (repo / GENERATOR_MODEL / ".config.pbtxt.dead.tmp").write_text("half")
    export_run(run, repo)
    assert sorted(p.name for p in (repo / GENERATOR_MODEL).iterdir()) == ["1", "2", "config.pbtxt"]


def test_the_same_template_spelled_differently_by_an_older_export_is_compatible(run, published, tmp_path):
    repo = copy_of(published, tmp_path)
    path = repo / GENERATOR_MODEL / "config.pbtxt"
    cfg = read_config(path)
    older = {k: v for k, v in LatentTemplate().to_dict().items() if k != "noise_scale"}  # before noise_scale existed
    cfg.parameters[META_TEMPLATE].string_value = json.dumps(older, indent=1)
    path.write_text(text_format.MessageToString(cfg))
    assert export_run(run, repo).version == 2
    assert model_versions(repo / GENERATOR_MODEL) == [1, 2]
