"""Helpers shared by the tests that talk to a real Triton over gRPC."""

import numpy as np
import tritonclient.grpc as grpcclient


def infer_inputs(arrays: dict[str, np.ndarray], dtype: str = "FP32") -> list:
    """tritonclient InferInputs for named arrays (the batch axis included)."""
    out = []
    for name, a in arrays.items():
        i = grpcclient.InferInput(name, list(a.shape), dtype)
        i.set_data_from_numpy(a)
        out.append(i)
    return out
