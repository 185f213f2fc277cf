"""CLI commands of training: data, train, evaluate (registered by infogan.cli).

torch is imported inside the commands, so the client's commands stay torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DATA_DIR = typer.Option("--data-dir", envvar="INFOGAN_DATA_DIR", help="Folder holding the datasets.")


def data(
    dataset: Annotated[str, typer.Option(help="mnist or fashion-mnist")] = "mnist",
    data_dir: Annotated[Path, DATA_DIR] = Path("data"),
) -> None:
    """Fetch a dataset's four IDX files and verify their checksums (idempotent)."""
    from infogan.training.data import fetch, verify

    folder = fetch(data_dir, dataset)
    verify(data_dir, dataset)
    typer.echo(f"{dataset}: 4 files verified in {folder}")


def register(app: typer.Typer) -> None:
    app.command("data")(data)
