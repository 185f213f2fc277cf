"""A Python-based Triton backend named `onnxruntime`.

The Triton bundled with nvidia-pytriton has no native onnxruntime backend, so a
model with `platform: "onnxruntime_onnx"` would fail to load. Triton falls back
to a Python-based backend when `<backend-dir>/onnxruntime/model.py` exists;
infogan.serve.server copies this file there, and the standard repository
(`<model>/config.pbtxt`, `<model>/<version>/model.onnx`) is served unchanged.

KIND_GPU instances run on their device id with onnxruntime's CUDA provider, on the
generator's GPU graph (model.gpu.onnx) where export wrote one; KIND_CPU instances on the
CPU provider and model.onnx. A KIND_GPU instance whose onnxruntime has no CUDA provider,
or could not start it, fails to load with a line naming the onnxruntime it imported: it
never computes on the CPU unannounced (on an H200 such instances served 1.4% of the
in-process rate).

Each dynamically batched group of requests runs as ONE onnxruntime call:
validate each request (a malformed one gets its own error, the rest go on),
concatenate along the batch axis, run, split the outputs back per request.

Runs inside Triton's stub process only (it imports triton_python_backend_utils).
No torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from infogan.contract import InfoganError
from infogan.serve.batching import RequestError, concat_requests, model_spec_from_config, split_outputs, validate_request
from infogan.serve.instance import open_instance


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        self.name = args["model_name"]
        self.spec = model_spec_from_config(config)
        self.input_names = [s.name for s in self.spec.inputs]

        # args["model_repository"] is this model's folder; the version folder holds the file.
        # `infogan serve` checks it before it starts; a polling server loads later configs
        # without that check, so open_instance repeats it.
        kind = args.get("model_instance_kind", "CPU")
        device_id = int(args.get("model_instance_device_id", 0))
        try:
            self.session, path = open_instance(config, Path(args["model_repository"]) / args["model_version"],
                                               kind, device_id, self.name)
        except InfoganError as e:
            raise pb_utils.TritonModelException(str(e)) from None
        self.path = path

        # the config and the ONNX file must agree on names, or every request would fail
        onnx_inputs = {i.name for i in self.session.get_inputs()}
        onnx_outputs = {o.name for o in self.session.get_outputs()}
        if set(self.input_names) != onnx_inputs or not {s.name for s in self.spec.outputs} <= onnx_outputs:
            raise pb_utils.TritonModelException(
                f"{self.name}: config.pbtxt tensors {self.input_names} -> {[s.name for s in self.spec.outputs]} "
                f"do not match {path.name}: {sorted(onnx_inputs)} -> {sorted(onnx_outputs)}"
            )
        self.output_names = [s.name for s in self.spec.outputs]
        self.output_dtypes = {s.name: s.dtype for s in self.spec.outputs}

    def execute(self, requests: list) -> list:
        # The per-request Python here is a measurable share of a lone request's time
        # (model_repository/README.md), so the common path does the least work: each
        # request's inputs are read in one call, and a lone request is neither
        # concatenated nor split (concat_requests and split_outputs pass it through).
        responses: list = [None] * len(requests)
        good: list[int] = []
        arrays: list[dict[str, np.ndarray]] = []
        for i, request in enumerate(requests):
            got = {t.name(): t.as_numpy() for t in request.inputs()}
            try:
                validate_request(got, self.spec)
            except RequestError as e:
                error = pb_utils.TritonError(f"{self.name}: {e}", pb_utils.TritonError.INVALID_ARG)
                responses[i] = pb_utils.InferenceResponse(error=error)
                continue
            good.append(i)
            arrays.append(got)

        if good:
            try:
                per_request = self._run(arrays)
            except Exception:
                # one bad request can sink a batched call: run each alone so only it fails
                per_request = []
                for a in arrays:
                    try:
                        per_request.append(self._run([a])[0])
                    except Exception as e:
                        per_request.append(e)
            for i, outputs in zip(good, per_request):
                responses[i] = self._response(requests[i], outputs)
        return responses

    def _run(self, arrays: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        batch, sizes = concat_requests(arrays, self.input_names)  # a lone request's arrays pass through
        values = self.session.run(self.output_names, batch)
        return split_outputs({n: self._output(n, v) for n, v in zip(self.output_names, values)}, sizes)

    def _output(self, name: str, value: np.ndarray) -> np.ndarray:
        dtype = self.output_dtypes[name]
        return value if value.dtype == dtype and value.flags.c_contiguous else np.ascontiguousarray(value, dtype=dtype)

    def _response(self, request, outputs):
        if isinstance(outputs, Exception):
            # it failed alone, so its values are the likely cause
            error = pb_utils.TritonError(f"{self.name}: inference failed: {outputs}", pb_utils.TritonError.INVALID_ARG)
            return pb_utils.InferenceResponse(error=error)
        names = self.output_names
        if len(names) > 1:  # a model of one output always sends it
            wanted = request.requested_output_names()
            names = [n for n in names if n in wanted] if wanted else names
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, outputs[n]) for n in names])

    def finalize(self) -> None:
        self.session = None
