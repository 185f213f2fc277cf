"""`infogan bench`: the benchmark suite's command (bench.suite does the work)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from infogan.bench.suite import Section
from infogan import defaults
from infogan.contract import InfoganError
from infogan.options import DATA_DIR, LATEST_RUN, REPOSITORY, data_dir_option, repository_option


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="about a minute: shorter windows, fewer batch sizes, no variants")] = False,
    only: Annotated[Optional[list[Section]], typer.Option("--only", help="run only this section (repeatable)")] = None,
    run: Annotated[Path, typer.Option("--run", help="training run to export; absent: a throwaway smoke run")] = LATEST_RUN,
    data_dir: data_dir_option("where MNIST lies (smoke training, variant quality)") = DATA_DIR,
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


def soak(
    repository: repository_option("The model repository to serve.") = REPOSITORY,
    clients: Annotated[int, typer.Option(min=1, max=256, help="Concurrent clients.")] = defaults.SOAK_CLIENTS,
    duration: Annotated[float, typer.Option(min=1.0, help="Seconds of load.")] = defaults.SOAK_SECONDS,
) -> None:
    """Many clients mixing generate and encode against a local Triton, every answer checked
    against in-process onnxruntime; requests/s, p99, failures and server memory growth."""
    from infogan.bench.soak import soak as run_soak
    from infogan.serve.server import check_repository

    check_repository(repository)
    r = run_soak(repository, clients, duration, log=lambda s: typer.echo(s, err=True))
    typer.echo(f"{r['requests']} requests in {r['duration_s']:g} s from {r['clients']} clients: "
               f"{r['requests_per_s']:.0f} requests/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
    typer.echo(f"failed {r['failed']}, answers unlike in-process onnxruntime {r['wrong']}; server memory "
               f"{r['rss_mib_after_warm_up']:.0f} MiB after warm-up, {r['rss_mib_end']:.0f} MiB at the end "
               f"({100 * r['rss_growth']:+.1f}%)")
    for f in r["first_failures"]:
        typer.echo(f"  {f}", err=True)
    if r["failed"] or r["wrong"] or r["rss_growth"] > 0.10:
        raise InfoganError("soak failed: requests failed, answers differed, or server memory grew by more than 10%")


def gpu_check(
    data_dir: data_dir_option("where MNIST lies") = DATA_DIR,
    cpu: Annotated[bool, typer.Option("--cpu", help="the same steps on CPU providers and KIND_CPU with tiny sizes "
                                                   "(keeps the check tested without a GPU; no CUDA graph)")] = False,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="train this many updates instead of the "
                                                                        "full default recipe (for tests)")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="also write every figure as JSON there")] = None,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="also write the table into this file, between "
                                                     "its gpu-check markers, e.g. BENCHMARKS.md")] = None,
) -> None:
    """The GPU path end to end: the full default recipe on CUDA, export (fp32, fp16, int8), CUDA
    provider parity, in-process generation up to batch 32,768 beside PyTorch, Triton with KIND_GPU
    instances; one table with the targets. Without a CUDA GPU it says so and exits 0."""
    from infogan.bench.gpu_check import check
    from infogan.bench.gpu_report import PARITY
    from infogan.bench.gpu_report import check_markdown, table, update_markdown
    from infogan.files import write_atomic

    if markdown is not None:
        check_markdown(markdown)

    def save(result: dict) -> None:  # after every step: a check stopped at its time limit keeps what it measured
        if out is not None:
            write_atomic(out, json.dumps(result, indent=2))

    result = check(data_dir, cpu=cpu, steps=steps, save=save,
                   log=lambda s: typer.echo(f"{time.strftime('%H:%M:%S')} {s}", err=True))
    text = table(result)
    typer.echo(text.rstrip("\n"))
    if "skipped" in result:
        return
    if out is not None:
        typer.echo(f"wrote {out}")
    if markdown is not None:
        update_markdown(markdown, text)
        typer.echo(f"updated the table in {markdown}")
    if result["failed"]:
        name, error = next(iter(result["failed"].items()))
        raise InfoganError(f"gpu-check failed at {name}: {error}"
                           + (f" ({len(result['failed']) - 1} more failed)" if len(result["failed"]) > 1 else "")
                           + "; the table shows the steps that ran")
    answer = result["triton"].get("answer", {"ok": True})
    if not answer["ok"]:
        raise InfoganError(f"triton={answer.get('error') or format(answer['max_abs_diff'], '.1e')} is wrong: a served "
                           f"request must answer the CPU provider's images within {PARITY.threshold:g}")
    if not result["parity"]["ok"]:
        raise InfoganError(f"parity={max(result['parity']['generator_max_abs_diff'], result['parity']['encoder_max_abs_diff']):.1e} "
                           f"is out of tolerance: the device's provider must match the CPU provider within {PARITY.threshold:g}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
    app.command("soak")(soak)
    app.command("gpu-check")(gpu_check)
