"""The `infogan` console script: a thin typer app over plain functions.

Each piece registers its own commands (training, export, serve, client).
Command modules import torch only inside the commands that need it, so the
client commands run in an environment without torch.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

from infogan.contract import InfoganError

app = typer.Typer(
    name="infogan",
    help="InfoGAN on MNIST: train, export to ONNX/Triton, serve, generate and encode.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@app.callback()
def _root() -> None:
    """InfoGAN on MNIST: train, export to ONNX/Triton, serve, generate and encode."""


COMMAND_MODULES = (
    "infogan.training.commands",
    "infogan.export.commands",
    "infogan.serve.commands",
    "infogan.client.commands",
    "infogan.bench.commands",
    "infogan.explore.commands",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


# The top-level modules of pyproject.toml's extras -> the extra that installs them. A runtime
# install (`pip install .`) has none of them; a command that needs one says which extra to add.
EXTRA_OF_MODULE = {
    "torch": "train", "scipy": "train", "matplotlib": "train", "onnx": "train", "onnxscript": "train",
    "pytriton": "serve",
    "gradio": "explore", "pandas": "explore",
}


def missing_extra(e: ModuleNotFoundError) -> str | None:
    """The one line for a command that imported a module of an extra that is not installed;
    None when the missing module is not an extra's (a bug, which keeps its traceback)."""
    module = (e.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "this command")
    return f"infogan {command} needs the {extra} extra: pip install 'infogan[{extra}]' ({module} is not installed)"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=file or sys.stderr)


def main() -> None:
    """Every error a user can act on prints one `error:` line and exits with status 2
    (typer's own usage errors exit 2 as well); a crash is a bug and keeps its traceback.
    A missing extra (torch in a runtime-only install) is one the user can act on.
    Warnings print one `warning:` line, without the source line Python would add."""
    warnings.showwarning = _one_line_warning
    try:
        app()
    except InfoganError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as e:
        line = missing_extra(e)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
