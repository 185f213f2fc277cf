"""The benchmark suite: `infogan bench [--quick] [--only upconv|training|generation|triton]`.

Sections, each in this process one after another (the machine is never shared
between two of them):
  upconv      the generator's up-convolution rewrite against the exporter's plain graph
  training    the project's training step against a naive eager step (bench.training)
  generation  generator and encoder in process: the API, the raw session, PyTorch
              eager; the fp16/int8 variants; GPU columns where CUDA is present
  triton      the local Triton server over gRPC on loopback against in-process onnxruntime
  explore     the explorer page: a slider move to a new 8x8 grid, handler and HTTP round trip
Prints one table and writes bench_results/<timestamp>.json and latest.json.
"""

from __future__ import annotations

import time
import traceback
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from infogan import defaults
from infogan.bench import machine
from infogan.export.repository import PRECISIONS


class Section(str, Enum):
    upconv = "upconv"
    training = "training"
    generation = "generation"
    triton = "triton"
    explore = "explore"



def run_suite(quick: bool = False, only: list[Section] | None = None, run: Path | None = Path(defaults.LATEST_RUN),
              data_dir: Path = Path(defaults.DATA_DIR), variants: bool | None = None,
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

    if "upconv" in sections:
        from infogan.bench import upconv

        section("upconv", lambda: upconv.run(quick))
    if "training" in sections:
        from infogan.bench import training

        section("training", lambda: training.run(quick))
    if {"generation", "triton", "explore"} & set(sections):
        from infogan.bench.repository import throwaway_repository

        precisions = PRECISIONS if variants and "generation" in sections else ("fp32",)
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
            if "explore" in sections:
                from infogan.bench import explore

                section("explore", lambda: explore.run(prep, quick, log))
    results["load_average"]["end"] = machine.load_average()
    results["seconds"]["total"] = time.perf_counter() - t_all
    return results


