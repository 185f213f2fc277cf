"""The benchmark suite: `python -m infogan.bench [--quick] [--only training|generation|triton]`.

Sections, each in this process one after another (the machine is never shared
between two of them):
  training    the project's training step against a naive eager step (bench.training)
  generation  generator and encoder in process: the API, the raw session, PyTorch
              eager; the fp16/int8 variants; GPU columns where CUDA is present
  triton      the local Triton server over gRPC on loopback against in-process onnxruntime
Prints one table and writes bench_results/<timestamp>.json and latest.json.
"""

from __future__ import annotations

import time
import traceback
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from infogan.bench import machine, report

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class Section(str, Enum):
    training = "training"
    generation = "generation"
    triton = "triton"


ALL_PRECISIONS = ("fp32", "fp16", "int8")


def run_suite(quick: bool = False, only: list[Section] | None = None, run: Path | None = Path("runs/latest"),
              data_dir: Path = Path("data"), variants: bool | None = None,
              log=lambda _: None) -> dict:
    """Every selected section, measured now; the results as one JSON-ready dict."""
    sections = [s.value for s in (only or list(Section))]
    variants = (not quick) if variants is None else variants
    results: dict = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine.machine(),
        "versions": machine.versions(),
        "git": machine.git_commit(),
        "load_average": {"start": machine.load_average()},
        "sections": {},
        "seconds": {},
    }
    t_all = time.perf_counter()

    def section(name: str, fn) -> None:
        log(f"[bold]{name}[/]")
        t0 = time.perf_counter()
        try:
            results["sections"][name] = fn()
        except Exception as e:  # one broken section must not cost the others' figures
            log(f"[red]{name} failed:[/] {type(e).__name__}: {e}")
            results["sections"][name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        results["seconds"][name] = time.perf_counter() - t0

    if "training" in sections:
        from infogan.bench import training

        section("training", lambda: training.run(quick))
    if "generation" in sections or "triton" in sections:
        from infogan.bench.repository import throwaway_repository

        precisions = ALL_PRECISIONS if variants and "generation" in sections else ("fp32",)
        t0 = time.perf_counter()
        with throwaway_repository(run, precisions, data_dir, log) as prep:
            results["seconds"]["model_repository"] = time.perf_counter() - t0
            results["model"] = {"source": prep.source, "run": str(prep.run), "precisions": list(prep.precisions)}
            if "generation" in sections:
                from infogan.bench import generation

                section("generation", lambda: generation.run(prep, quick, log))
            if "triton" in sections:
                from infogan.bench import triton

                section("triton", lambda: triton.run(prep, quick, log))
                server = results["sections"]["triton"].get("server")
                if server:
                    results["versions"]["tritonserver"] = server.get("version")
    results["load_average"]["end"] = machine.load_average()
    results["seconds"]["total"] = time.perf_counter() - t_all
    return results


@app.command()
def main(
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
    """Measure training, in-process generation and Triton serving; print one table, write JSON."""
    console = Console(stderr=True)
    results = run_suite(quick, only, run, data_dir, variants,
                        log=lambda s: console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {s}", highlight=False))
    report.render(results)
    path = report.write_json(results, out)
    print(f"wrote {path} and {out / 'latest.json'} ({results['seconds']['total']:.0f} s)")
    if markdown is not None:
        report.update_markdown(markdown, results)
        print(f"updated the table in {markdown}")


if __name__ == "__main__":
    app()
