"""infogan.serve: a local Triton Inference Server (the bundled binary of
nvidia-pytriton, no Docker) serving the ONNX model repository.

server.py       TritonServer, free_port, check_repository (see its docstring)
launch.py       where the bundled binary, backend and stubs lie; argv and environment
onnxruntime_backend.py   the Python-based `onnxruntime` backend Triton runs
batching.py     its pure pieces: specs, validation, concat/split
"""
