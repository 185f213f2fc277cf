"""`infogan gpu-check` (`make gpu-check`): the GPU path, end to end, in one prepared command.

On a machine with a CUDA GPU (torch built with CUDA, onnxruntime-gpu installed):
  1. trains the full default recipe on CUDA (bf16 autocast) and reads its images/s, then
     its first 400 updates with every core's threads and with one (the host launches the kernels);
  2. exports the run in fp32, fp16 and int8 into a throwaway repository;
  3. checks onnxruntime's CUDA provider against its CPU provider on the same inputs;
  4. times in-process generation at batch 1, 256, 4,096 and 32,768, side by side: the
     client API, the raw session with IO binding, PyTorch bf16 in a CUDA graph and
     PyTorch fp32 eager (infogan.bench.gpu_inference);
  5. serves the repository with KIND_GPU instances and loads Triton at batch 256 x 4
     and 1 x 16 (the load client of `infogan bench`), each beside the raw session's
     rate at the same total batch;
  6. opens the generator's session as a served instance does and times it here, at the
     batch sizes Triton executed, first call and after (cuDNN's search as served and
     HEURISTIC): how much of Triton's time per execution is the session's;
and gives one table with the versions and the targets (infogan.bench.gpu_report).
Without a CUDA GPU it says so and does nothing. `cpu=True` runs the same steps with
onnxruntime's CPU provider, KIND_CPU instances and tiny settings (the CUDA graph is
skipped): that is how the tests keep this check working on machines without a GPU.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from infogan import defaults
from infogan.bench.gpu_report import PARITY
from infogan.export.repository import PRECISIONS
from infogan.contract import (CATEGORICAL, CONFIG_FILE, CONTINUOUS, ENCODER_MODEL, GENERATOR_MODEL, IMAGE, META_TEMPLATE, NOISE,
                              LatentTemplate,
                              encoder_inputs, encoder_outputs, generator_inputs, generator_outputs)

GPU_BATCHES = (1, 256, 4096, 32768)
GPU_SETTINGS = ((256, 4), (1, 16))  # Triton: (batch per request, concurrent clients)
THREAD_STEPS = 400  # the updates each thread count trains in the training_threads step
# --cpu: the same steps, sized to run in a test
CPU_STEPS, CPU_BATCHES, CPU_SETTINGS = 20, (1, 8), ((8, 2), (1, 2))


def served_batches(settings: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    """The batch sizes a served instance meets under the Triton settings: one request's, and all of
    the concurrent clients' batched into one execution."""
    return tuple(sorted({n for b, c in settings for n in (b, b * c)}))


def no_gpu_reason() -> str | None:
    import onnxruntime as ort
    import torch

    if not torch.cuda.is_available():
        return f"no CUDA GPU here (torch {torch.__version__}: torch.cuda.is_available() is False); nothing to check"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return ("a CUDA GPU is here but onnxruntime has no CUDA provider: "
                "make gpu-check WHEELS=<folder of make gpu-wheels> installs onnxruntime-gpu")
    return None


def _short_config(out: Path, data_dir: Path, steps: int, **overrides):
    """The default recipe cut to exactly `steps` updates, one evaluation on 1,000 images, no judge."""
    from infogan.training.config import resolve

    preset_epoch = resolve("default").steps_per_epoch
    per_epoch = preset_epoch if steps % preset_epoch == 0 else steps
    epochs = steps // per_epoch
    return resolve("default", data_dir=str(data_dir), out_dir=str(out), epochs=epochs, steps_per_epoch=per_epoch,
                   eval_every=epochs, samples_every=epochs, checkpoint_every=epochs, judge=False, eval_subset=1000,
                   **{"run_name": "gpu-check", **overrides})


def train_recipe(out: Path, data_dir: Path, steps: int | None) -> dict:
    """The default recipe on the device training picks (CUDA where torch sees it); steps=None: all of it."""
    from infogan.training.config import resolve
    from infogan.training.sweep import median_images_per_s
    from infogan.training.train import train

    if steps is None:
        cfg = resolve("default", data_dir=str(data_dir), out_dir=str(out), run_name="gpu-check")
    else:  # a short run for tests
        cfg = _short_config(out, data_dir, steps)
    t0 = time.perf_counter()
    run = train(cfg, progress=False)
    ev = json.loads((run / defaults.EVALUATION_FILE).read_text())
    return {"run": str(run), "updates": cfg.total_steps, "batch": cfg.batch_size, "full_recipe": steps is None,
            "images_per_s": median_images_per_s(run), "seconds": time.perf_counter() - t0, "accuracy": ev["accuracy"]}


def training_threads(out: Path, data_dir: Path, steps: int, log=lambda _: None) -> dict:
    """The default recipe's first `steps` updates with every core's intra-op threads, then with one
    thread, one after the other, on the device training picks. On an H200 a profile (outside this
    check) found the step bound by the host launching some 800 kernels, and one thread trained at
    7,825 images/s against 6,100 for sixteen: this row decides whether GPU training should take one
    thread. The process's thread count is restored after."""
    import torch

    from infogan.machine import cpu_count
    from infogan.training.sweep import median_images_per_s
    from infogan.training.train import train

    before = torch.get_num_threads()
    log(f"training threads: the first {steps} updates with {cpu_count()} threads, then with 1")
    rates: dict[str, float | None] = {}
    try:
        for threads in dict.fromkeys((cpu_count(), 1)):
            run = train(_short_config(out, data_dir, steps, run_name=f"threads-{threads}", threads=threads), progress=False)
            rates[str(threads)] = median_images_per_s(run)
    finally:
        torch.set_num_threads(before)
    return {"updates": steps, "images_per_s": rates}


def parity(repository: Path, gpu: bool) -> dict:
    """Largest difference between the device's provider and the CPU provider, fp32 generator and encoder."""
    from infogan.bench.generation import latent_feeds
    from infogan.client.onnx_backend import newest_version
    from infogan.sessions import open_session

    def both(model):
        path = newest_version(repository, model)
        return open_session(path, gpu=gpu), open_session(path, gpu=False)

    gen_dev, gen_cpu = both(GENERATOR_MODEL)
    feeds = latent_feeds(_template(repository), 256)
    images_dev, images_cpu = gen_dev.run(None, feeds)[0], gen_cpu.run(None, feeds)[0]
    enc_dev, enc_cpu = both(ENCODER_MODEL)
    a, b = enc_dev.run(None, {IMAGE: images_cpu}), enc_cpu.run(None, {IMAGE: images_cpu})
    out = {"generator_max_abs_diff": float(np.abs(images_dev - images_cpu).max()),
           "encoder_max_abs_diff": float(max(np.abs(x - y).max() for x, y in zip(a, b))),
           "providers": gen_dev.get_providers()}
    out["ok"] = max(out["generator_max_abs_diff"], out["encoder_max_abs_diff"]) <= PARITY.threshold
    return out


def _template(repository: Path) -> LatentTemplate:
    from infogan.client import Generator

    with Generator.from_repository(repository) as g:
        return g.template


def set_instance_kind(repository: Path, kind: str) -> None:
    """Rewrite every model's config with instances of `kind` (KIND_GPU or KIND_CPU), through
    export's own config writer: the same config export wrote, but for the instance group."""
    from infogan.export.repository import config_text, model_config, read_config
    from infogan.files import write_atomic

    for path in sorted(repository.glob(f"*/{CONFIG_FILE}")):
        cfg = read_config(path)
        parameters = {k: v.string_value for k, v in cfg.parameters.items()}
        template = LatentTemplate.from_json(parameters[META_TEMPLATE])
        specs = ((generator_inputs, generator_outputs) if cfg.name.startswith(GENERATOR_MODEL)
                 else (encoder_inputs, encoder_outputs))
        accelerators = cfg.optimization.execution_accelerators.gpu_execution_accelerator
        new = model_config(cfg.name, specs[0](template), specs[1](template), parameters, tensorrt=bool(accelerators),
                           tensorrt_fp16=any(a.parameters.get("precision_mode") == "FP16" for a in accelerators), kind=kind)
        expected = type(cfg)()
        expected.CopyFrom(cfg)
        for group in expected.instance_group:
            group.kind = new.instance_group[0].kind
        if new != expected:  # export wrote something model_config's arguments cannot say: keep it visible
            raise RuntimeError(f"{path} differs from model_config's rebuild beyond the instance kind: "
                               "set_instance_kind needs the new argument")
        write_atomic(path, config_text(new))


def served_answer(url: str, repository: Path, template: LatentTemplate, batch: int = 8) -> dict:
    """One real request over gRPC, its images against the CPU provider's for the same latents: the
    load windows count answers, this checks one's content (a backend that answers empty tensors
    or computes wrong would pass the load). A wrong answer is recorded ("ok" False, "error" for a
    wrong shape), not raised, so the load figures after it are still measured; the command fails on it."""
    from infogan.bench.generation import latent_feeds
    from infogan.client import Generator
    from infogan.client.onnx_backend import newest_version
    from infogan.sessions import open_session

    feeds = latent_feeds(template, batch)
    with Generator.from_triton(url) as served:
        got = served.run(feeds[NOISE], feeds[CATEGORICAL], feeds[CONTINUOUS])
    want = open_session(newest_version(repository, GENERATOR_MODEL), gpu=False).run(None, feeds)[0]
    if got.shape != want.shape:
        return {"batch": batch, "max_abs_diff": None, "ok": False,
                "error": f"Triton answered images of shape {got.shape} for {want.shape}"}
    diff = float(np.abs(got - want).max())
    return {"batch": batch, "max_abs_diff": diff, "ok": bool(PARITY.check(diff))}


def triton(repository: Path, gpu: bool, settings: tuple[tuple[int, int], ...], window_s: float, budget_s: float,
           log=lambda _: None) -> dict:
    """Each (batch, concurrency) loaded for window_s, then the raw IO-bound session at the same
    total batch, in this process while the server idles."""
    import tritonclient.grpc as grpcclient

    from infogan.bench.gpu_inference import raw_rate
    from infogan.bench.triton import measure_setting
    from infogan.serve.server import TritonServer, free_port

    kind = "KIND_GPU" if gpu else "KIND_CPU"
    set_instance_kind(repository, kind)
    template = _template(repository)
    out: dict = {"kind": kind, "settings": {}}
    server = TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    with server:
        stats = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            out["version"] = stats.get_server_metadata(as_json=True).get("version")
            out["answer"] = served_answer(server.grpc_url, repository, template)
            for batch, concurrency in settings:
                log(f"Triton ({kind}): batch {batch} x {concurrency} clients")
                s = measure_setting(server.grpc_url, stats, template, batch, concurrency, min(window_s / 3, 2.0), window_s)
                s["in_process"] = raw_rate(repository, gpu, batch * concurrency, budget_s)
                s["fraction_of_in_process"] = s["images_per_s"] / s["in_process"]["images_per_s"]
                out["settings"][f"b{batch}_c{concurrency}"] = s
        finally:
            stats.close()
    return out


# cuDNN's algorithm search, as onnxruntime's CUDA provider names it: the default benchmarks every
# algorithm at each new input shape, and a dynamic batcher makes a new shape at every new batch size
CUDNN_SEARCH = "cudnn_conv_algo_search"


def backend_session(repository: Path, gpu: bool, batches: tuple[int, ...], calls: int = 20,
                    log=lambda _: None) -> dict:
    """The generator's session opened exactly as one served instance opens it
    (infogan.serve.instance.open_instance: the config's threads and spinning, the GPU graph), timed
    in this process apart from Triton. Per batch: the first call at that shape, then the median of
    `calls` more. Triton's "infer" per execution less this is Triton's and the Python backend's own
    share; a first call far over the rest is the per-shape search dynamic batching keeps meeting. On
    a GPU the same again with cuDNN's HEURISTIC search ("heuristic"), the served default being "served"."""
    from google.protobuf import json_format

    from infogan.bench.generation import latent_feeds
    from infogan.client.onnx_backend import newest_version
    from infogan.export.repository import read_config
    from infogan.serve.instance import open_instance

    kind = "KIND_GPU" if gpu else "KIND_CPU"
    set_instance_kind(repository, kind)
    config = json_format.MessageToDict(read_config(repository / GENERATOR_MODEL / CONFIG_FILE),
                                       preserving_proto_field_name=True)
    version_dir = newest_version(repository, GENERATOR_MODEL).parent
    sizes = sorted(set(batches))
    warm = next(n for n in range(3, max(sizes) + 3) if n not in sizes)  # the session's first run, at no measured shape
    feeds_all = latent_feeds(_template(repository), max(sizes + [warm]))
    arms = {"served": None, **({"heuristic": {CUDNN_SEARCH: "HEURISTIC"}} if gpu else {})}
    out: dict = {"kind": kind, "arms": {}}
    for arm, cuda_options in arms.items():
        log(f"the served instance's session in process ({kind}, {arm}): batches {', '.join(map(str, sizes))}")
        session, path = open_instance(config, version_dir, kind[len("KIND_"):], name=GENERATOR_MODEL,
                                      cuda_options=cuda_options)
        session.run(None, {k: v[:warm] for k, v in feeds_all.items()})
        rows = {}
        for b in sizes:
            feeds = {k: v[:b] for k, v in feeds_all.items()}
            seconds = []
            for _ in range(calls + 1):
                t0 = time.perf_counter()
                session.run(None, feeds)
                seconds.append(time.perf_counter() - t0)
            rows[str(b)] = {"first_ms": 1e3 * seconds[0], "p50_ms": 1e3 * float(np.median(seconds[1:]))}
        out["arms"][arm] = {"file": path.name, "providers": session.get_providers(), "batches": rows}
        del session
    return out


# the check's steps in order, and the earlier step each one needs (a failed step skips those that need it)
STEPS = (("training", None), ("training_threads", "training"), ("export", "training"), ("parity", "export"), ("generation", "export"),
         ("triton", "export"), ("backend_session", "export"))


def run_steps(result: dict, steps: dict, log=print, save=lambda _: None) -> None:
    """Each step in STEPS order into result[name], its seconds into result["seconds"]; a step that
    raises is recorded in result["failed"] (its error's first line; the traceback goes to the log),
    the steps that need it in result["not_run"], and the others still run: one failing step (Triton
    not starting, say) must not lose the minutes of figures before it. save(result) after each step,
    so a check killed at its time limit keeps what it measured."""
    import traceback

    failed, not_run = result.setdefault("failed", {}), result.setdefault("not_run", {})
    for name, needs in STEPS:
        if needs in failed or needs in not_run:
            not_run[name] = f"{needs} did not complete"
            continue
        t0 = time.perf_counter()
        try:
            result[name] = steps[name]()
        except Exception as e:  # noqa: BLE001 -- recorded, shown in the table, and the command exits non-zero
            log(traceback.format_exc().rstrip())
            failed[name] = (f"{type(e).__name__}: {e}".strip().splitlines() or [type(e).__name__])[0]
            log(f"{name} failed: {failed[name]}")
        result["seconds"][name] = time.perf_counter() - t0
        save(result)


def check(data_dir: Path = Path(defaults.DATA_DIR), cpu: bool = False, steps: int | None = None,
          batches: tuple[int, ...] | None = None, settings: tuple[tuple[int, int], ...] | None = None,
          budget_s: float | None = None, window_s: float | None = None, log=print, save=lambda _: None) -> dict:
    """The whole check; a dict of its figures, or {"skipped": reason} without a GPU.
    None for a size means: the GPU's (the full recipe, batches up to 32,768), or tiny ones with cpu.
    A step that fails is named in result["failed"] and the rest still runs (run_steps)."""
    if not cpu:
        reason = no_gpu_reason()
        if reason:
            return {"skipped": reason}
    from infogan.bench.gpu_inference import generation
    from infogan.bench.gpu_report import versions
    from infogan.export.pipeline import export_run

    gpu = not cpu
    steps = steps if steps is not None or gpu else CPU_STEPS
    batches = batches or (GPU_BATCHES if gpu else CPU_BATCHES)
    settings = settings or (GPU_SETTINGS if gpu else CPU_SETTINGS)
    budget_s = budget_s or (2.0 if gpu else 0.2)
    window_s = window_s or (6.0 if gpu else 1.0)
    result: dict = {"gpu": gpu, "versions": versions(), "seconds": {}}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="infogan-gpu-check-") as tmp:
        tmp, repository = Path(tmp), Path(tmp) / "repository"

        def training():
            log(f"training the default recipe ({'all of it' if steps is None else f'{steps} updates'}) "
                f"on {result['versions']['device']}")
            return train_recipe(tmp / "runs", data_dir, steps)

        def export():
            log(f"exporting {', '.join(PRECISIONS)}")
            t0 = time.perf_counter()
            export_run(result["training"]["run"], repository, precisions=PRECISIONS, data_dir=data_dir)
            return {"precisions": list(PRECISIONS), "seconds": time.perf_counter() - t0}

        def device_parity():
            log("onnxruntime: the device's provider against the CPU provider")
            return parity(repository, gpu)

        run_steps(result, {
            "training": training,
            "training_threads": lambda: training_threads(tmp / "threads", data_dir, THREAD_STEPS if gpu else CPU_STEPS, log),
            "export": export, "parity": device_parity,
            "generation": lambda: generation(repository, Path(result["training"]["run"]) / defaults.CHECKPOINT_FILE,
                                             gpu, batches, budget_s, log=log),
            "triton": lambda: triton(repository, gpu, settings, window_s, budget_s, log),
            "backend_session": lambda: backend_session(repository, gpu, served_batches(settings), log=log)}, log, save)
    result["versions"]["triton"] = result.get("triton", {}).get("version")
    result["seconds"]["total"] = time.perf_counter() - t_all
    save(result)
    return result
