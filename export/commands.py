"""CLI commands of this piece (registered by infogan.cli): `infogan export`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from infogan.export.repository import DEFAULT_KEEP_VERSIONS, PRECISIONS
from infogan.options import LATEST_RUN, REPOSITORY, repository_option

Precision = Enum("Precision", {p: p for p in PRECISIONS}, type=str)
PRECISION_HELP = "fp32 (the default), fp16 (GPU serving) or int8 (CPU serving); repeat to publish several"


def export_command(
    run: Annotated[Path, typer.Option("--run", help="training run directory")] = LATEST_RUN,
    repository: repository_option("Triton model repository to publish into") = REPOSITORY,
    precision: Annotated[Optional[list[Precision]], typer.Option("--precision", help=PRECISION_HELP)] = None,
    keep_versions: Annotated[int, typer.Option("--keep-versions", help="published versions kept per model")] = DEFAULT_KEEP_VERSIONS,
    tensorrt: Annotated[bool, typer.Option("--tensorrt", help="ask Triton for the TensorRT accelerator on GPUs")] = False,
    force: Annotated[bool, typer.Option("--force", help="publish even if the latent template differs from the served one")] = False,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="where the test set lies, for the variants' Q accuracy")] = None,
) -> None:
    """Export a run's generator and encoder to ONNX, check them against PyTorch, publish them as version N+1."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from infogan.export.pipeline import export_run

    precisions = tuple(p.value for p in precision) if precision else ("fp32",)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("export", total=None)
        result = export_run(run, repository, precisions, keep_versions=keep_versions, tensorrt=tensorrt, force=force,
                            data_dir=data_dir, on_step=lambda s: bar.update(task, description=s),
                            log=lambda s: bar.console.print(s, markup=False, highlight=False, soft_wrap=True))
    typer.echo(f"version {result.version}: " + ", ".join(f"{result.repository}/{m}/{result.version}" for m in result.models))


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
