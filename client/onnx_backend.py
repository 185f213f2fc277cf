"""In-process inference with onnxruntime, on a model file or a Triton-layout repository.

The backend is a thin shell around one InferenceSession: names are resolved
once, inputs go to the session as they come (float32, C-contiguous: no copy),
and outputs come back as the session's own arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infogan.client.info import EXPORT_HINT, ModelInfo
from infogan.contract import MODEL_FILE, InfoganError, model_versions
from infogan.sessions import open_session

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


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None):
        path = Path(path)
        if not path.is_file():
            raise InfoganError(f"path={path} is not a file: give an exported {MODEL_FILE}")
        try:
            self.session = open_session(path, threads)
        except Exception as e:  # onnxruntime raises its own types for unreadable files
            raise InfoganError(f"path={path} is not a loadable ONNX model ({type(e).__name__}): {EXPORT_HINT}") from None
        self.path = path
        self.info = ModelInfo.from_properties(self.session.get_modelmeta().custom_metadata_map, str(path))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outs))

    def close(self) -> None:
        pass
