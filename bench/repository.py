"""The model repository a benchmark runs on: made in a temporary folder from a run.

With --run (default runs/latest) present, its checkpoint is exported; otherwise
the smoke preset trains for a few seconds first. Weights do not change speed,
so either serves. Nothing outside the temporary folder is written.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from infogan import defaults
from infogan.contract import ENCODER_MODEL, GENERATOR_MODEL


@dataclass(frozen=True)
class Prepared:
    repository: Path
    checkpoint: Path
    run: Path
    source: str  # "run <name>" or "smoke training (throwaway)"
    precisions: tuple[str, ...]
    quality: dict  # precision -> export's quality figures of the variant
    seconds: float  # how long making it took

    def model_path(self, base: str, precision: str = "fp32") -> Path:
        from infogan.client.onnx_backend import newest_version
        from infogan.export.pipeline import model_name

        return newest_version(self.repository, model_name(base, precision))

    @property
    def generator(self) -> Path:
        return self.model_path(GENERATOR_MODEL)

    @property
    def encoder(self) -> Path:
        return self.model_path(ENCODER_MODEL)


@contextlib.contextmanager
def throwaway_repository(run: Path | None, precisions: tuple[str, ...], data_dir: Path,
                         log=lambda _: None) -> Iterator[Prepared]:
    """Export `run` (or a fresh smoke run) into a temporary Triton repository, removed on exit."""
    from infogan.export.pipeline import export_run

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="infogan-bench-") as tmp:
        tmp = Path(tmp)
        if run is not None and (run / defaults.CHECKPOINT_FILE).is_file():
            run = run.resolve()
            source = f"run {run.name}"
        else:
            from infogan.training.config import resolve
            from infogan.training.train import train

            log("no trained run: training the smoke preset for a throwaway model")
            run = train(resolve("smoke", out_dir=str(tmp / "runs"), data_dir=str(data_dir)), progress=False)
            source = "smoke training (throwaway)"
        log(f"exporting {source} ({', '.join(precisions)})")
        result = export_run(run, tmp / "repository", precisions=precisions, data_dir=data_dir)
        yield Prepared(tmp / "repository", run / defaults.CHECKPOINT_FILE, run, source, precisions, result.quality,
                       time.perf_counter() - t0)
