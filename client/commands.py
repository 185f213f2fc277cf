"""CLI commands of this piece (registered by infogan.cli)."""

import typer


def register(app: typer.Typer) -> None:
    pass
