"""The pure pieces of the onnxruntime backend: read tensor specs, session
settings and the model file from a Triton model config, validate one request, and
run a dynamically batched group of requests as one batch (concatenate inputs, split
outputs back).

numpy only: no Triton, no onnxruntime, no torch, so all of it is tested in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Triton's TYPE_* names -> numpy dtypes (the types an ONNX image model uses)
TRITON_TO_NUMPY = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
}


class RequestError(ValueError):
    """One request is malformed; only that request fails."""


@dataclass(frozen=True)
class ServedTensor:
    """One input or output of a served model as its Triton config states it (numpy dtype;
    dims leave the batch axis out, -1 is any size). The contract's TensorSpec is what
    export writes; this is what the backend is handed."""

    name: str
    dtype: np.dtype
    dims: tuple[int, ...]

    def describe(self) -> str:
        return f"{self.name}: {np.dtype(self.dtype).name}[batch, {', '.join(map(str, self.dims))}]"


@dataclass(frozen=True)
class ModelSpec:
    inputs: tuple[ServedTensor, ...]
    outputs: tuple[ServedTensor, ...]
    max_batch_size: int


def _tensor_spec(entry: dict) -> ServedTensor:
    data_type = entry["data_type"]
    if data_type not in TRITON_TO_NUMPY:
        raise ValueError(f"data_type={data_type} of {entry['name']} is not supported: use one of {sorted(TRITON_TO_NUMPY)}")
    # Triton writes int64 fields (dims, max_batch_size) as JSON strings
    dims = tuple(int(d) for d in entry.get("dims", ()))
    if "reshape" in entry:
        raise ValueError(f"{entry['name']}: reshape in the model config is not supported by this backend")
    return ServedTensor(entry["name"], np.dtype(TRITON_TO_NUMPY[data_type]), dims)


def model_spec_from_config(config: dict) -> ModelSpec:
    """The model config as Triton hands it to a Python backend (parsed JSON)."""
    max_batch_size = int(config.get("max_batch_size", 0))
    if max_batch_size < 1:
        # without a batch axis dynamic batching cannot group requests
        raise ValueError(f"max_batch_size={max_batch_size} is not supported: this backend needs a batch axis (max_batch_size >= 1)")
    return ModelSpec(
        inputs=tuple(_tensor_spec(e) for e in config.get("input", ())),
        outputs=tuple(_tensor_spec(e) for e in config.get("output", ())),
        max_batch_size=max_batch_size,
    )


def _config_parameter(config: dict, key: str) -> str | None:
    """A `parameters { key: ... value { string_value: ... } }` entry of the config, or None."""
    entry = config.get("parameters", {}).get(key)
    return entry.get("string_value") if entry else None


def _instances_of_kind(config: dict, kind: str) -> int:
    """How many instances of `kind` (CPU or GPU) the config's instance groups ask for, KIND_AUTO included."""
    groups = [g for g in config.get("instance_group", ()) if g.get("kind", "KIND_AUTO") in (f"KIND_{kind}", "KIND_AUTO")]
    return max(1, sum(int(g.get("count", 1)) for g in groups))


INTRA_OP_THREADS = "intra_op_thread_count"  # the key Triton's native onnxruntime backend reads
SPINNING = "session.intra_op.allow_spinning"  # onnxruntime's session config key
SPINNING_DEFAULT = "0"


@dataclass(frozen=True)
class SessionSettings:
    intra_op_threads: int
    entries: dict[str, str]  # onnxruntime session config entries


def session_settings(config: dict, kind: str, cpus: int) -> SessionSettings:
    """The onnxruntime session settings one instance of this model gets.

    Threads: the config's intra_op_thread_count (1..cpus), else (or for 0) the machine's
    cores shared among the model's instances of this kind (the gRPC front end needs cores too).
    Spinning: off unless the config asks for it ("1"); the measurements behind that
    default, on two CPUs, are in model_repository/README.md.
    Raises ValueError naming a bad parameter.
    """
    threads = _config_parameter(config, INTRA_OP_THREADS)
    if threads is not None and not threads.isdecimal():
        raise ValueError(f"parameter {INTRA_OP_THREADS}={threads} is invalid: use a number of threads (0: the default)")
    digits = (threads or "").lstrip("0")
    if not digits:  # absent or 0: the native backend's "default" too
        count = max(1, cpus // _instances_of_kind(config, kind))
    elif len(digits) > len(str(cpus)) or int(digits) > cpus:  # lengths first: int() refuses thousands of digits
        # more threads than cores only contend, and a huge count would exhaust the process
        raise ValueError(f"parameter {INTRA_OP_THREADS}={threads[:20]} is invalid: use 1..{cpus} threads "
                         "(the cores this server may use; 0: the default)")
    else:
        count = int(digits)
    spinning = _config_parameter(config, SPINNING)
    if spinning is None:
        spinning = SPINNING_DEFAULT
    elif spinning not in ("0", "1"):
        raise ValueError(f"parameter {SPINNING}={spinning} is invalid: use 0 (no spinning) or 1")
    return SessionSettings(count, {SPINNING: spinning})


def validate_request(arrays: dict[str, np.ndarray | None], spec: ModelSpec) -> int:
    """Check one request's inputs against the spec; return its batch size.

    arrays maps every input name of the spec to the request's array, or None
    where the request lacks that input. Raises RequestError naming the input.
    """
    batch = None
    for s in spec.inputs:
        a = arrays.get(s.name)
        if a is None:
            raise RequestError(f"input {s.name} is missing: expected {s.describe()}")
        if a.dtype != s.dtype:
            raise RequestError(f"input {s.name} has dtype {a.dtype.name}: expected {s.describe()}")
        per_sample = a.shape[1:]
        if a.ndim != len(s.dims) + 1 or any(d != -1 and d != n for d, n in zip(s.dims, per_sample)):
            raise RequestError(f"input {s.name} has shape {list(a.shape)}: expected {s.describe()}")
        if batch is None:
            batch = a.shape[0]
        elif a.shape[0] != batch:
            raise RequestError(f"input {s.name} has batch {a.shape[0]}: the other inputs have batch {batch}")
    unknown = sorted(set(arrays) - {s.name for s in spec.inputs})
    if unknown:
        raise RequestError(f"inputs {unknown} are unknown: the model takes {[s.name for s in spec.inputs]}")
    if batch is None or batch < 1:
        raise RequestError("request has an empty batch: send at least one sample")
    if batch > spec.max_batch_size:
        raise RequestError(f"request has batch {batch}: the model allows at most {spec.max_batch_size}")
    return batch


def concat_requests(requests: list[dict[str, np.ndarray]], names: list[str]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Stack validated requests along the batch axis: ({name: [sum n_i, ...]}, [n_i])."""
    sizes = [int(r[names[0]].shape[0]) for r in requests]
    if len(requests) == 1:
        return {n: requests[0][n] for n in names}, sizes
    return {n: np.concatenate([r[n] for r in requests], axis=0) for n in names}, sizes


def split_outputs(outputs: dict[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]]:
    """Undo concat_requests on the outputs: one {name: [n_i, ...]} per request, in order."""
    total = sum(sizes)
    for name, a in outputs.items():
        if a.shape[0] != total:
            raise ValueError(f"output {name} has batch {a.shape[0]}: the requests sent {total}")
    if len(sizes) == 1:  # a lone request: the outputs are its own, no split
        return [outputs]
    bounds = np.cumsum(sizes)[:-1]
    per_output = {name: np.split(a, bounds, axis=0) for name, a in outputs.items()}
    return [{name: parts[i] for name, parts in per_output.items()} for i in range(len(sizes))]


def model_file(version_dir: Path, filename: str) -> Path:
    """The file a config names for one version (default_model_filename, else model.onnx):
    a plain name inside the version folder, which a symlink may not lead out of. Triton joins
    the name as given, so without this check `../../x.onnx` would serve a file from anywhere.
    Raises ValueError saying why."""
    if filename in ("", ".", "..") or "/" in filename or "\\" in filename:
        raise ValueError(f"it must be a plain file name inside its folder {version_dir.name}/")
    path = version_dir / filename
    home = version_dir.resolve()
    real = path.resolve()
    if real.parent != home:
        raise ValueError(f"{version_dir.name}/{filename} resolves to {real}, outside its folder {version_dir.name}/")
    return path
