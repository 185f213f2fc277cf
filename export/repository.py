"""The Triton model repository: config.pbtxt from the contract, atomic versioned publishing.

Layout (Triton's): <repository>/<model>/config.pbtxt and <model>/<version>/model.onnx.
Triton takes only numeric folders as versions, so everything half-made lives in
dot-folders beside them and becomes visible by one rename. Imports no torch.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from infogan.contract import CONFIG_FILE, META_TEMPLATE, MODEL_FILE, PLATFORM, InfoganError, LatentTemplate, TensorSpec, model_versions
from infogan.files import fsync_dir, write_atomic

if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2 as mc

PRECISIONS = ("fp32", "fp16", "int8")  # fp32 models carry the contract's names, the others a suffix
MAX_BATCH_SIZE = 1024
# Dynamic batching without a wait and without preferred sizes: a lone request runs at
# once, and requests that queued while the instance was busy run as one batch (up to
# max_batch_size). Measured side by side against a 500 us delay with preferred 64/256
# (model_repository/README.md): lone-request latency 2.15 -> 1.38 ms, no loss under load.
PREFERRED_BATCH_SIZES: tuple[int, ...] = ()
MAX_QUEUE_DELAY_US = 0
DEFAULT_KEEP_VERSIONS = 3
LOCK_TIMEOUT_S = 60.0


# ---------------------------------------------------------------- config.pbtxt


def model_config(
    name: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    parameters: dict[str, str],
    tensorrt: bool = False,
    tensorrt_fp16: bool = False,
    kind: str = "KIND_AUTO",
) -> mc.ModelConfig:
    """The Triton config of one exported model, built with Triton's own schema.

    instance_group: one group of KIND_AUTO with count 1. Triton resolves KIND_AUTO to
    one instance on each GPU where the backend can use GPUs (NVIDIA's container with
    --gpus and the native onnxruntime backend) and to one CPU instance otherwise (our
    bundled server). Left out, Triton would start 2 CPU instances of an onnxruntime
    model, each sized for the whole machine; one instance with dynamic batching uses
    the cores better.
    """
    from tritonclient.grpc import model_config_pb2 as mc  # here, not at import: the CLI starts faster
    cfg = mc.ModelConfig(name=name, platform=PLATFORM, max_batch_size=MAX_BATCH_SIZE)
    for spec, target in [(s, cfg.input) for s in inputs] + [(s, cfg.output) for s in outputs]:
        target.add(name=spec.name, data_type=mc.DataType.Value(f"TYPE_{spec.dtype}"), dims=list(spec.shape))
    cfg.version_policy.latest.num_versions = 1
    cfg.instance_group.add(count=1, kind=mc.ModelInstanceGroup.Kind.Value(kind))  # KIND_GPU/KIND_CPU: a deployment's pin
    cfg.dynamic_batching.SetInParent()  # on, even with every field at its default
    cfg.dynamic_batching.preferred_batch_size.extend(PREFERRED_BATCH_SIZES)
    cfg.dynamic_batching.max_queue_delay_microseconds = MAX_QUEUE_DELAY_US
    # zeros are inside every input's value range (images in [0, 1], soft one-hot rows)
    warm = cfg.model_warmup.add(name="zeros_batch_1", batch_size=1)
    for spec in inputs:
        warm.inputs[spec.name].CopyFrom(
            mc.ModelWarmup.Input(data_type=mc.DataType.Value(f"TYPE_{spec.dtype}"), dims=list(spec.shape), zero_data=True)
        )
    if tensorrt:
        trt = cfg.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
        trt.parameters["precision_mode"] = "FP16" if tensorrt_fp16 else "FP32"
        trt.parameters["max_workspace_size_bytes"] = str(1 << 30)
    for key, value in parameters.items():
        cfg.parameters[key].string_value = value
    return cfg


CONFIG_HEADER = "# Written by `infogan export` from infogan.contract; rewritten on every export.\n"


def config_text(cfg: mc.ModelConfig) -> str:
    from google.protobuf import text_format

    text = text_format.MessageToString(cfg)
    # protobuf leaves out enum defaults; spell KIND_AUTO (0) out for the reader, it parses the same
    text = text.replace("instance_group {\n  count: 1\n}", "instance_group {\n  count: 1\n  kind: KIND_AUTO\n}")
    return CONFIG_HEADER + text


def read_config(path: Path) -> mc.ModelConfig:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    try:
        return text_format.Parse(path.read_text(), mc.ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise InfoganError(f"config={path} is invalid: not a Triton model config ({str(e).splitlines()[0]}); fix or remove it") from None


# ---------------------------------------------------------------- atomic file operations


def _remove_tree_atomic(path: Path) -> None:
    """Rename to a dot-folder first, so a polling server never sees a half-deleted version."""
    trash = path.parent / f".trash-{path.name}-{os.getpid()}-{time.monotonic_ns()}"
    os.rename(path, trash)
    shutil.rmtree(trash)


@contextmanager
def repository_lock(repository: Path, timeout_s: float = LOCK_TIMEOUT_S):
    """An exclusive flock on the repository folder itself: no lock file is left behind."""
    fd = os.open(repository, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise InfoganError(f"repository={repository} is invalid: it cannot be locked ({e.strerror}); "
                                       "use a folder on a local file system") from None
                if time.monotonic() > deadline:
                    raise InfoganError(
                        f"repository={repository} is invalid: another export holds its lock after {timeout_s:.0f}s; "
                        "wait for it to finish"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ---------------------------------------------------------------- versions and publishing


def model_name(base: str, precision: str) -> str:
    """infogan_generator (fp32), infogan_generator_fp16, infogan_generator_int8: variants are separate models."""
    return base if precision == "fp32" else f"{base}_{precision}"


@dataclass
class StagedModel:
    """One model ready to publish: its ONNX bytes already checked, its config built."""

    name: str
    model_bytes: bytes
    config: mc.ModelConfig
    extra_files: dict[str, bytes] = field(default_factory=dict)  # beside model.onnx: the generator's GPU graph
    template_json: str = field(init=False)

    def __post_init__(self) -> None:
        params = self.config.parameters
        self.template_json = params[META_TEMPLATE].string_value if META_TEMPLATE in params else ""


def current_template(model_dir: Path) -> str | None:
    """The latent template JSON of the published model, or None where there is no config."""
    path = model_dir / CONFIG_FILE
    if not path.is_file():
        return None
    cfg = read_config(path)
    return cfg.parameters[META_TEMPLATE].string_value if META_TEMPLATE in cfg.parameters else ""


def same_template(published: str | None, new: str) -> bool:
    """Compare templates, not strings: JSON written by an older version may spell the same template differently."""
    if published is None:
        return True  # nothing published yet
    try:
        return LatentTemplate.from_json(published) == LatentTemplate.from_json(new)
    except InfoganError:
        return False


def check_compatible(repository: Path, staged: list[StagedModel], force: bool) -> None:
    """Refuse a template change: clients cache the template and kept versions would
    no longer fit the config. --force publishes anyway and drops the older versions."""
    for m in staged:
        have = current_template(repository / m.name)
        if force or same_template(have, m.template_json):
            continue
        raise InfoganError(
            f"template={m.template_json} is invalid for repository={repository}: {m.name} serves "
            f"{have or 'an unknown template'}; export a run of that template, or pass --force to replace it"
        )


def check_keep_versions(keep_versions: int) -> None:
    if keep_versions < 1:
        raise InfoganError(f"keep_versions={keep_versions} is invalid: keep at least 1 version")


def publish(repository: Path, staged: list[StagedModel], keep_versions: int = DEFAULT_KEEP_VERSIONS,
            force: bool = False, lock_timeout_s: float = LOCK_TIMEOUT_S, family: tuple[str, ...] = ()) -> int:
    """Publish every staged model as version N+1, N the newest version among the staged
    models and the `family` (models published by other exports, e.g. other precisions):
    one N per export, so equal version numbers mean the same checkpoint.

    Per model: write <model>/.staging-*/model.onnx, fsync, rename it to <model>/<N+1>,
    then replace config.pbtxt atomically. Should any step fail, the steps already done
    are undone, so the repository is as it was. Old versions are pruned only after
    every model is in place.
    """
    check_keep_versions(keep_versions)
    created_repo = not repository.exists()
    repository.mkdir(parents=True, exist_ok=True)
    try:
        with repository_lock(repository, lock_timeout_s):
            check_compatible(repository, staged, force)
            before = {m.name: current_template(repository / m.name) for m in staged}
            names = {m.name for m in staged} | set(family)
            version = 1 + max([0] + [v for name in names for v in model_versions(repository / name)])
            undo: list = []
            try:
                for m in staged:
                    _publish_one(repository / m.name, m, version, undo)
            except BaseException:
                for step in reversed(undo):  # still under the lock: no other export sees the half state
                    step()
                raise
            for m in staged:
                _clear_leftovers(repository / m.name)
                # a forced template change leaves no older version the new config would misdescribe
                keep = keep_versions if same_template(before[m.name], m.template_json) else 1
                for old in model_versions(repository / m.name)[:-keep]:
                    _remove_tree_atomic(repository / m.name / str(old))
        return version
    except BaseException:
        if created_repo and repository.is_dir() and not any(repository.iterdir()):
            repository.rmdir()
        raise


def _clear_leftovers(model_dir: Path) -> None:
    """Staging and trash dot-folders of an export that was killed: under the lock no live export owns them."""
    if model_dir.is_dir():
        for p in model_dir.iterdir():
            if p.is_dir() and p.name.startswith((".staging-", ".trash-")):
                shutil.rmtree(p, ignore_errors=True)
            elif p.is_file() and p.name.startswith(f".{CONFIG_FILE}.") and p.name.endswith(".tmp"):
                p.unlink(missing_ok=True)  # write_atomic's temporary file


def _publish_one(model_dir: Path, m: StagedModel, version: int, undo: list) -> None:
    if not model_dir.exists():
        model_dir.mkdir()
        undo.append(lambda: model_dir.rmdir() if not any(model_dir.iterdir()) else None)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))
    try:
        for filename, data in {MODEL_FILE: m.model_bytes, **m.extra_files}.items():
            with open(staging / filename, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        fsync_dir(staging)
        target = model_dir / str(version)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(model_dir)
    undo.append(lambda: _remove_tree_atomic(target))

    config_path = model_dir / CONFIG_FILE
    old = config_path.read_bytes() if config_path.is_file() else None
    write_atomic(config_path, config_text(m.config).encode())
    undo.append(lambda: write_atomic(config_path, old) if old is not None else config_path.unlink())
