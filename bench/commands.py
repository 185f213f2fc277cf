"""`infogan bench`: the benchmark suite's command (bench.suite does the work)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from infogan.bench.suite import Section


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="about a minute: shorter windows, fewer batch sizes, no variants")] = False,
    only: Annotated[Optional[list[Section]], typer.Option("--only", help="run only this section (repeatable)")] = None,
    run: Annotated[Path, typer.Option("--run", help="training run to export; absent: a throwaway smoke run")] = Path("runs/latest"),
    data_dir: Annotated[Path, typer.Option("--data-dir", help="where MNIST lies (smoke training, variant quality)")] = Path("data"),
    out: Annotated[Path, typer.Option("--out", help="folder for <timestamp>.json and latest.json")] = Path("bench_results"),
    variants: Annotated[Optional[bool], typer.Option("--variants/--no-variants",
                                                     help="export and measure fp16/int8 too (default: on, off with --quick)")] = None,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="also write the table into this file "
                                                     "(between its bench markers), e.g. BENCHMARKS.md")] = None,
) -> None:
    """Measure the up-conv rewrite, training, in-process generation and Triton serving; print one table, write JSON."""
    from rich.console import Console

    from infogan.bench import report
    from infogan.bench.suite import run_suite

    console = Console(stderr=True)
    results = run_suite(quick, only, run, data_dir, variants,
                        log=lambda s: console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {s}", highlight=False))
    report.render(results)
    path = report.write_json(results, out)
    print(f"wrote {path} and {out / 'latest.json'} ({results['seconds']['total']:.0f} s)")
    if markdown is not None:
        report.update_markdown(markdown, results)
        print(f"updated the table in {markdown}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
