"""export_run publishes checked models into a Triton repository: metadata, config.pbtxt
against the ONNX graph (Triton's own schema), versions, pruning, atomicity, locking."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
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
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def published(run, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("published") / "model_repository"
    assert export_run(run, repo).version == 1
    return repo


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


def test_each_export_is_the_next_version_and_old_versions_are_pruned(run, tmp_path):
    repo = tmp_path / "repo"
    assert [export_run(run, repo, keep_versions=2).version for _ in range(3)] == [1, 2, 3]
    for m in MODELS:
        assert model_versions(repo / m) == [2, 3]


def test_an_export_failing_at_the_parity_check_leaves_the_repository_byte_for_byte_unchanged(run, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    export_run(run, repo)
    before = snapshot(repo)
    bad = parity.ParityReport("generator", 0.5, "image", 7)
    monkeypatch.setattr(parity, "generator_parity", lambda *a, **k: bad)
    with pytest.raises(InfoganError, match="nothing was published"):
        export_run(run, repo)
    assert snapshot(repo) == before


def test_a_failure_while_publishing_the_second_model_rolls_back_the_first(run, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    export_run(run, repo)
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


def test_an_export_killed_halfway_leaves_the_repository_unchanged(run, tmp_path):
    repo = tmp_path / "repo"
    export_run(run, repo)
    before = snapshot(repo)
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(run), str(repo)], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(repo) == before


PUBLISH_KILL_SCRIPT = """
import os, signal, sys
from infogan.export import pipeline, repository
kill_at, calls, real_publish = int(sys.argv[3]), [0], repository.publish

def killing(real):
    def step(*args, **kwargs):
        out = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == kill_at:  # right after the kill_at-th rename of publishing
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return step

def publish(*args, **kwargs):
    os.rename, os.replace = killing(os.rename), killing(os.replace)
    return real_publish(*args, **kwargs)

pipeline.publish = publish
pipeline.export_run(sys.argv[1], sys.argv[2])
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [pytest.param(1, marks=pytest.mark.full), 2, pytest.param(3, marks=pytest.mark.full),
                                     pytest.param(4, marks=pytest.mark.full)],
                         ids=["generator-version", "generator-config", "encoder-version", "encoder-config"])
def test_an_export_killed_at_any_rename_leaves_a_servable_repository_that_the_next_export_repairs(
        run, tmp_path, kill_at):
    """Publishing renames, per model, the version folder into place, then config.pbtxt. A SIGKILL
    after any of them leaves every model's newest version complete and loadable; between the
    generator and the encoder the generator is one version ahead (the window the repository
    README describes); the next export brings both to one new version from one checkpoint."""
    from infogan.client import Encoder, Generator

    repo = tmp_path / "repo"
    export_run(run, repo)
    second = make_run(tmp_path / "second", seed=1)
    proc = subprocess.run([sys.executable, "-c", PUBLISH_KILL_SCRIPT, str(second), str(repo), str(kill_at)],
                          capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]

    newest = {m: model_versions(repo / m)[-1] for m in MODELS}
    assert newest[GENERATOR_MODEL] == 2 and newest[ENCODER_MODEL] == (2 if kill_at >= 3 else 1)
    for m in MODELS:
        read_config(repo / m / "config.pbtxt")  # parses: never half written
        onnx.checker.check_model(str(repo / m / str(newest[m]) / "model.onnx"))
    Generator.from_repository(repo).generate(2, seed=0)
    Encoder.from_repository(repo).encode(Generator.from_repository(repo).generate(2, seed=0))

    third = make_run(tmp_path / "third", seed=2)
    assert export_run(third, repo).version == 3
    shas = {m: read_metadata(repo / m / "3" / "model.onnx")[META_CHECKPOINT_SHA256] for m in MODELS}
    assert len(set(shas.values())) == 1
    for m in MODELS:
        assert not [p.name for p in (repo / m).iterdir() if p.name.startswith(".")]  # no leftovers


def test_a_different_latent_template_is_refused_unless_forced(run, tmp_path):
    repo = tmp_path / "repo"
    export_run(run, repo)
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


def test_a_second_export_waits_for_the_lock_and_gives_up_with_a_clear_error(run, tmp_path):
    repo = tmp_path / "repo"
    export_run(run, repo)
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


def test_leftovers_of_a_killed_publish_are_cleared_by_the_next_export(run, tmp_path):
    repo = tmp_path / "repo"
    export_run(run, repo)
    (repo / GENERATOR_MODEL / ".staging-dead").mkdir()
    (repo / GENERATOR_MODEL / ".staging-dead" / "model.onnx").write_bytes(b"half")
    (repo / GENERATOR_MODEL / ".config.pbtxt.dead.tmp").write_text("half")
    export_run(run, repo)
    assert sorted(p.name for p in (repo / GENERATOR_MODEL).iterdir()) == ["1", "2", "config.pbtxt"]


def test_the_same_template_spelled_differently_by_an_older_export_is_compatible(run, tmp_path):
    repo = tmp_path / "repo"
    export_run(run, repo)
    path = repo / GENERATOR_MODEL / "config.pbtxt"
    cfg = read_config(path)
    older = {k: v for k, v in LatentTemplate().to_dict().items() if k != "noise_scale"}  # before noise_scale existed
    cfg.parameters[META_TEMPLATE].string_value = json.dumps(older, indent=1)
    path.write_text(text_format.MessageToString(cfg))
    assert export_run(run, repo).version == 2
    assert model_versions(repo / GENERATOR_MODEL) == [1, 2]
