"""In-process inference with onnxruntime, on a model file or a Triton-layout repository.

The backend is a thin shell around one InferenceSession: names are resolved
once, inputs go to the session as they come (float32, C-contiguous: no copy),
and outputs come back as the session's own arrays.

On a GPU (device 'cuda[:N]', or 'auto' where onnxruntime has the CUDA provider) it
loads the generator's GPU graph (contract.GPU_MODEL_FILE) where the version holds
one, and runs with IO binding: each output is written once, straight from the
device into the array returned, instead of into onnxruntime's own array first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infogan.client.info import DEFAULT_DEVICE, EXPORT_HINT, ModelInfo
from infogan.contract import GPU_MODEL_FILE, MODEL_FILE, InfoganError, model_versions
from infogan.sessions import open_session, resolve_device

_NUMPY_OF = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}

def newest_version(repository: str | Path, model: str, version: int | None = None) -> Path:
    """<repository>/<model>/<version>/model.onnx, the newest numeric version by default."""
    model_dir = Path(repository) / model
    if not model_dir.is_dir():
        raise InfoganError(f"repository={repository} has no model '{model}': {EXPORT_HINT}")
    if version is not None:
        path = model_dir / str(version) / MODEL_FILE
        if not path.is_file():
            raise InfoganError(f"version={version} of model '{model}' does not exist: have {model_versions(model_dir)}")
        return path
    versions = [v for v in model_versions(model_dir) if (model_dir / str(v) / MODEL_FILE).is_file()]
    if not versions:
        raise InfoganError(f"repository={repository} has no version of '{model}' with a {MODEL_FILE}: {EXPORT_HINT}")
    return model_dir / str(max(versions)) / MODEL_FILE


def graph_for(path: Path, device_kind: str) -> Path:
    """The graph a session on device_kind loads: the GPU graph beside model.onnx on CUDA where there is one."""
    gpu_graph = path.with_name(GPU_MODEL_FILE)
    return gpu_graph if device_kind == "cuda" and path.name == MODEL_FILE and gpu_graph.is_file() else path


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None, device: str = DEFAULT_DEVICE,
                 io_binding: bool | None = None):
        path = Path(path)
        if not path.is_file():
            raise InfoganError(f"path={path} is not a file: give an exported {MODEL_FILE}")
        kind, index = resolve_device(device)
        graph = graph_for(path, kind)
        try:
            self.session = open_session(graph, threads, gpu=kind == "cuda", device_id=index)
        except InfoganError:  # CUDA asked for and not started: its own line says why
            raise
        except Exception as e:  # onnxruntime raises its own types for unreadable files
            raise InfoganError(f"path={graph} is not a loadable ONNX model ({type(e).__name__}): {EXPORT_HINT}") from None
        self.path, self.graph = path, graph
        self.device = f"cuda:{index}" if kind == "cuda" else "cpu"
        self.info = ModelInfo.from_properties(self.session.get_modelmeta().custom_metadata_map, str(path))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # per-sample shape and dtype of each output, for the arrays IO binding writes into
        self._outputs = [(o.name, tuple(o.shape[1:]), _NUMPY_OF.get(o.type)) for o in self.session.get_outputs()]
        bindable = all(isinstance(d, int) for _, shape, _ in self._outputs for d in shape) and \
            all(dtype is not None for *_, dtype in self._outputs)
        self.io_binding = (kind == "cuda" if io_binding is None else io_binding) and bindable

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.io_binding:
            return self._infer_bound(feeds)
        outs = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outs))

    def _infer_bound(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inputs read from host memory as they are, each output written once into a new array."""
        n = len(next(iter(feeds.values())))
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        outs = {}
        for name, shape, dtype in self._outputs:
            out = np.empty((n, *shape), dtype)
            binding.bind_output(name, "cpu", 0, dtype, out.shape, out.ctypes.data)
            outs[name] = out
        self.session.run_with_iobinding(binding)
        return outs

    def close(self) -> None:
        pass
