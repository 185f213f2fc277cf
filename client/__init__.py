"""The torch-free client: generate and encode on onnxruntime or a Triton server.

    from infogan.client import Generator, Encoder
"""

from infogan.client.api import Encoder, Encoding, Generator

__all__ = ["Generator", "Encoder", "Encoding"]
