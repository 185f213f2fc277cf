"""The command-line options several commands share, as typer's Annotated types: each
flag's name, environment variable and default come from infogan.defaults, so a command
never restates them. A command that says more about an option passes its own help."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from infogan import defaults


def repository_option(help: str = "The Triton model repository (written by `infogan export`).") -> type:
    return Annotated[Path, typer.Option("--repository", envvar=defaults.ENV_REPOSITORY, help=help)]


def data_dir_option(help: str = "Folder holding the datasets.") -> type:
    return Annotated[Path, typer.Option("--data-dir", envvar=defaults.ENV_DATA_DIR, help=help)]


def url_option(help: str = "Triton's gRPC endpoint, host:port.") -> type:
    return Annotated[str, typer.Option("--url", envvar=defaults.ENV_URL, help=help)]


def timeout_option(help: str = "Deadline in seconds of each request to the server, retries included.") -> type:
    return Annotated[float, typer.Option("--timeout", envvar=defaults.ENV_TIMEOUT, help=help)]


RepositoryOpt = repository_option()
DataDirOpt = data_dir_option()
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", envvar=defaults.ENV_RUNS_DIR, help="Folder holding training runs.")]
UrlOpt = url_option()
TimeoutOpt = timeout_option()



# the client commands' (generate, traverse, encode) choice of where the models run


class Backend(str, Enum):
    triton = "triton"
    onnx = "onnx"


BackendOpt = Annotated[Backend, typer.Option("--backend", envvar=defaults.ENV_BACKEND, help="triton: the server at --url; onnx: onnxruntime in this process on --repository.")]
ClientRepositoryOpt = repository_option("The model repository (for --backend onnx).")
DeviceOpt = Annotated[str, typer.Option("--device", envvar=defaults.ENV_DEVICE, help="For --backend onnx: auto (the GPU where onnxruntime has CUDA), cpu, cuda or cuda:N.")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Serve this model instead of the contract's, e.g. a variant such as infogan_generator_int8.")]

REPOSITORY = Path(defaults.REPOSITORY)
DATA_DIR = Path(defaults.DATA_DIR)
RUNS_DIR = Path(defaults.RUNS_DIR)
LATEST_RUN = Path(defaults.LATEST_RUN)
BACKEND = Backend.triton
DEVICE = defaults.DEVICE
