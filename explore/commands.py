"""`infogan explore`: the latent explorer's web page on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from infogan import defaults
from infogan.contract import InfoganError
from infogan.defaults import LOOPBACK
from infogan.options import REPOSITORY, repository_option, timeout_option


def explore_command(
    repository: repository_option("The model repository (onnxruntime in this process).") = REPOSITORY,
    url: Annotated[Optional[str], typer.Option(envvar=defaults.ENV_URL, help="Use the Triton server at this gRPC host:port instead of onnxruntime.")] = None,
    host: Annotated[str, typer.Option(help="Address of the page; anything but loopback exposes it to the network.")] = defaults.HOST,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the page.")] = defaults.EXPLORE_PORT,
    timeout: timeout_option("Deadline in seconds of each request to the server.") = defaults.TIMEOUT_S,
    threads: Annotated[Optional[int], typer.Option(min=1, help="onnxruntime threads (default: all cores).")] = None,
) -> None:
    """Open the latent explorer: sliders over the codes, a drawing pad for Q, the model's facts. Ctrl-C stops it."""
    try:
        from infogan.explore.app import launch
    except ImportError as e:
        raise InfoganError(f"explore needs the explore extra ({e.name} is missing): pip install -e '.[explore]'") from None
    from infogan.explore.views import Explorer

    if host not in LOOPBACK:
        typer.echo(f"warning: host={host} exposes the explorer (port {port}) to the network, without authentication; "
                   f"the default {defaults.HOST} keeps it on this machine", err=True)
    explorer = Explorer.open(repository, url, timeout, threads)
    typer.echo(f"explorer on {explorer.where}")
    typer.echo(f"open http://{'[' + host + ']' if ':' in host else host}:{port}/ (Ctrl-C stops it)")
    try:
        launch(explorer, host, port, block=True)
    except OSError as e:
        raise InfoganError(f"port={port} cannot be used on {host} ({e.strerror or e}): pass another --port") from None
    finally:
        explorer.close()


def register(app: typer.Typer) -> None:
    app.command("explore")(explore_command)
