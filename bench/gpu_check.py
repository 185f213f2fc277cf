"""`make gpu-check`: the GPU path, verified by one prepared command.

On a machine with a CUDA GPU (torch built with CUDA, onnxruntime-gpu installed):
  1. trains the default recipe for a few hundred updates on CUDA (bf16 autocast);
  2. exports the run (fp32 and fp16) into a throwaway repository;
  3. checks onnxruntime's CUDA provider against its CPU provider on the same inputs;
  4. times generation on the CUDA provider at batch 1, 256 and 4096;
  5. serves the repository with KIND_GPU instances and measures Triton at batch 1 x 16
     and 256 x 4 (the load client of `infogan bench`);
and prints one short table (and writes it as JSON with --out). Without a CUDA GPU it
says so and exits 0. `--cpu` runs the same steps with onnxruntime's CPU provider and
KIND_CPU instances (training still takes CUDA where torch sees it): that is how the
tests keep this script working on machines that have no GPU.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from infogan.contract import CONFIG_FILE, ENCODER_MODEL, GENERATOR_MODEL, IMAGE

PARITY_TOLERANCE = 1e-3  # CUDA kernels (TF32, other reduction orders) against the CPU provider


def _no_gpu_reason() -> str | None:
    import onnxruntime as ort
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA GPU here (torch {torch.__version__}: torch.cuda.is_available() is False)"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return ("a CUDA GPU is here but onnxruntime has no CUDA provider: "
                "pip uninstall onnxruntime && pip install -e '.[gpu]'")
    return None


def _train(out: Path, data_dir: Path, steps: int) -> tuple[Path, float]:
    """A short run of the default recipe on the device training picks (CUDA where torch sees it)."""
    from infogan.training.config import resolve
    from infogan.training.train import train

    epochs = max(1, steps // 100)
    cfg = resolve("default", data_dir=str(data_dir), out_dir=str(out), run_name="gpu-check", epochs=epochs,
                  steps_per_epoch=min(steps, 100), eval_every=epochs, samples_every=epochs, checkpoint_every=epochs,
                  judge=False, eval_subset=1000)
    run = train(cfg, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in rows if r.get("kind") == "train" and "images_per_s" in r]
    return run, float(np.median(rates[1:] or rates))


def _sessions(path: Path, gpu: bool):
    """(the device's session, the CPU provider's session) on one file."""
    from infogan.sessions import open_session

    return open_session(path, gpu=gpu), open_session(path, gpu=False)


def _parity(repository: Path, gpu: bool) -> dict:
    from infogan.bench.generation import latent_feeds
    from infogan.client.onnx_backend import newest_version

    out = {}
    gen_dev, gen_cpu = _sessions(newest_version(repository, GENERATOR_MODEL), gpu)
    feeds = latent_feeds(_template(repository), 256)
    images_dev, images_cpu = gen_dev.run(None, feeds)[0], gen_cpu.run(None, feeds)[0]
    out["generator_max_abs_diff"] = float(np.abs(images_dev - images_cpu).max())
    enc_dev, enc_cpu = _sessions(newest_version(repository, ENCODER_MODEL), gpu)
    a, b = enc_dev.run(None, {IMAGE: images_cpu}), enc_cpu.run(None, {IMAGE: images_cpu})
    out["encoder_max_abs_diff"] = float(max(np.abs(x - y).max() for x, y in zip(a, b)))
    out["providers"] = gen_dev.get_providers()
    out["ok"] = max(out["generator_max_abs_diff"], out["encoder_max_abs_diff"]) <= PARITY_TOLERANCE
    return out


def _template(repository: Path):
    from infogan.client import Generator

    with Generator.from_repository(repository) as g:
        return g.template


def _generation(repository: Path, gpu: bool, batches: tuple[int, ...], budget_s: float) -> dict:
    from infogan.bench.generation import latent_feeds
    from infogan.bench.timing import Timing, timed_block
    from infogan.client.onnx_backend import newest_version

    from infogan.sessions import open_session

    session = open_session(newest_version(repository, GENERATOR_MODEL), gpu=gpu)
    feeds_all = latent_feeds(_template(repository), max(batches))
    out = {}
    for b in batches:
        feeds = {k: v[:b] for k, v in feeds_all.items()}
        session.run(None, feeds)  # warm-up: kernels, allocations
        t = Timing(b)
        timed_block(lambda: session.run(None, feeds), t, budget_s)
        out[str(b)] = t.summary()
    return out


def _instances_on(repository: Path, kind: str) -> None:
    """Every model's config: instance_group of `kind` (KIND_GPU or KIND_CPU) instead of KIND_AUTO."""
    for config in repository.glob(f"*/{CONFIG_FILE}"):
        text = config.read_text()
        config.write_text(re.sub(r"kind: KIND_\w+", f"kind: {kind}", text))


def _triton(repository: Path, settings: tuple[tuple[int, int], ...], window_s: float) -> dict:
    import tritonclient.grpc as grpcclient

    from infogan.bench.triton import _setting
    from infogan.serve.server import TritonServer, free_port

    template = _template(repository)
    server = TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    out = {}
    with server:
        stats = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            for batch, concurrency in settings:
                out[f"b{batch}_c{concurrency}"] = _setting(server.grpc_url, stats, template, batch, concurrency,
                                                           window_s / 3, window_s)
        finally:
            stats.close()
    return out


def check(data_dir: Path = Path("data"), cpu: bool = False, steps: int = 300,
          batches: tuple[int, ...] = (1, 256, 4096), settings: tuple[tuple[int, int], ...] = ((1, 16), (256, 4)),
          budget_s: float = 2.0, window_s: float = 4.0, log=print) -> dict:
    """The whole check; a dict of its figures (and "skipped" without a GPU)."""
    if not cpu:
        reason = _no_gpu_reason()
        if reason:
            return {"skipped": reason}
    import torch

    from infogan.export.pipeline import export_run

    result: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    with tempfile.TemporaryDirectory(prefix="infogan-gpu-check-") as tmp:
        tmp = Path(tmp)
        log(f"training {steps} updates on {result['device']}")
        t0 = time.perf_counter()
        run, rate = _train(tmp / "runs", data_dir, steps)
        result["training"] = {"updates": steps, "images_per_s": rate, "seconds": time.perf_counter() - t0}
        log("exporting fp32 and fp16")
        export_run(run, tmp / "repository", precisions=("fp32", "fp16"), data_dir=data_dir)
        log("onnxruntime: device provider against the CPU provider")
        result["parity"] = _parity(tmp / "repository", gpu=not cpu)
        log("onnxruntime: generation")
        result["generation"] = _generation(tmp / "repository", not cpu, batches, budget_s)
        _instances_on(tmp / "repository", "KIND_CPU" if cpu else "KIND_GPU")
        log("Triton with " + ("KIND_CPU" if cpu else "KIND_GPU") + " instances")
        result["triton"] = _triton(tmp / "repository", settings, window_s)
    return result


def table(result: dict) -> str:
    if "skipped" in result:
        return result["skipped"]
    p = result["parity"]
    lines = [f"device: {result['device']}",
             "| what | figure |", "|---|--:|",
             f"| training, {result['training']['updates']} updates | {result['training']['images_per_s']:,.0f} images/s |",
             f"| parity vs CPU provider (generator / encoder) | {p['generator_max_abs_diff']:.1e} / {p['encoder_max_abs_diff']:.1e} "
             f"({'ok' if p['ok'] else 'MISS'}, <= {PARITY_TOLERANCE:g}) |"]
    for b, t in result["generation"].items():
        lines.append(f"| generation, batch {b} | {t['images_per_s']:,.0f} images/s (p50 {t['p50_ms']:.2f} ms) |")
    for key, s in result["triton"].items():
        lines.append(f"| Triton, batch {s['batch']} x {s['concurrency']} | {s['images_per_s']:,.0f} images/s "
                     f"(p99 {s['p99_ms']:.1f} ms, executed batch {s['mean_executed_batch'] or 0:.1f}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The GPU path in one command: train, export, parity, generation, Triton.")
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--cpu", action="store_true", help="the same steps with CPU providers and KIND_CPU (to test this script without a GPU)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", type=Path, help="also write the figures as JSON there")
    a = p.parse_args(argv)
    result = check(a.data_dir, a.cpu, a.steps)
    print(table(result))
    if a.out:
        a.out.write_text(json.dumps(result, indent=2))
    return 0 if "skipped" in result or result["parity"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
