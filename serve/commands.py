"""CLI commands of this piece (registered by infogan.cli): `infogan serve`."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from infogan import defaults
from infogan.contract import InfoganError
from infogan.defaults import LOOPBACK
from infogan.options import REPOSITORY, RepositoryOpt


def serve(repository: Path, host: str = defaults.HOST, grpc_port: int = defaults.GRPC_PORT,
          http_port: int = defaults.HTTP_PORT, metrics_port: int = defaults.METRICS_PORT, log_file: Path | None = None,
          timeout: float = defaults.SERVER_START_TIMEOUT_S,
          echo: Callable[[str], None] = print, stop: threading.Event | None = None, poll_secs: int = 0) -> None:
    """Serve the repository until `stop` is set, SIGTERM or Ctrl-C; then stop cleanly."""
    from infogan.serve.server import TritonServer

    stop = stop or threading.Event()
    server = TritonServer(repository, grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port, host=host,
                          log_file=log_file, poll_secs=poll_secs)
    starting = True

    def on_signal(*_):
        nonlocal starting
        stop.set()
        if starting:  # abandon start(), which stops what it launched; only once, so that stop runs through
            starting = False
            raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        try:
            server.start(timeout)
        except KeyboardInterrupt:
            echo("interrupted while starting")
            return
        starting = False
        echo(f"Triton is serving {server.repository}")
        echo(f"  gRPC     {server.grpc_url}")
        echo(f"  HTTP     http://{server.http_url}")
        echo(f"  metrics  {server.metrics_url}")
        echo(f"  models   {', '.join(server.models)}")
        if server.start_aborts:
            echo(f"  note     tritonserver aborted {len(server.start_aborts)} time(s) while starting (the Python backend's "
                 "known abort under CPU load) and was started again")
        if log_file:
            echo(f"  log      {server.log_file}")
        echo("Ctrl-C or SIGTERM stops it.")
        while not stop.wait(0.5):
            if not server.is_running():
                raise RuntimeError(f"tritonserver exited unexpectedly:\n{server.logs()[-3000:]}")
        echo("stopping...")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    echo("stopped")


def serve_command(
    repository: RepositoryOpt = REPOSITORY,
    host: Annotated[str, typer.Option(help="address to listen on; 0.0.0.0 exposes the server to the network")] = defaults.HOST,
    grpc_port: Annotated[int, typer.Option(help="gRPC port")] = defaults.GRPC_PORT,
    http_port: Annotated[int, typer.Option(help="HTTP port")] = defaults.HTTP_PORT,
    metrics_port: Annotated[int, typer.Option(help="Prometheus metrics port")] = defaults.METRICS_PORT,
    log_file: Annotated[Optional[Path], typer.Option(help="write Triton's own log there (kept after it stops)")] = None,
    poll_secs: Annotated[int, typer.Option(min=0, help="rescan the repository every N seconds and serve new exports "
                                                   "without a restart (0: serve the models found at start)")] = 0,
) -> None:
    """Start a local Triton Inference Server (no Docker) on the model repository; Ctrl-C stops it."""
    if host not in LOOPBACK:
        typer.echo(f"warning: host={host} exposes the server (gRPC {grpc_port}, HTTP {http_port}, metrics {metrics_port}) "
                   f"to the network, without authentication; the default {defaults.HOST} keeps it on this machine", err=True)
    try:
        serve(repository, host, grpc_port, http_port, metrics_port, log_file, echo=lambda line: typer.echo(line),
              poll_secs=poll_secs)
    except RuntimeError as e:  # Triton failed: its log, no traceback, and the one exit status of every error (2)
        raise InfoganError(str(e)) from None


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
