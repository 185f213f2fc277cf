"""The GPU check's one table: each figure beside its target, the versions above it, and
its place in BENCHMARKS.md between the gpu-check markers. Targets are shown, never asserted."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from infogan.bench.report import Target
from infogan.contract import InfoganError

BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"

TRAINING = Target(">=", 40_000)  # images/s at batch 128
PARITY = Target("<=", 1e-3)  # CUDA kernels (TF32, other reduction orders) against the CPU provider
API_BATCH_1_MS = Target("<=", 0.15, " ms")  # p50 of one generate(1) in process
API_RATE = {4096: Target(">=", 1.5e6), 32768: Target(">=", 2.5e6)}  # images/s
API_OVER_RAW = Target(">=", 0.95, "%")
API_OVER_GRAPH = Target(">=", 1.0, "x")
RATIO_BATCHES = (4096, 32768)  # where the API's ratios are judged; smaller batches are shown
TRITON_FRACTION = Target(">=", 0.50, "%")  # of in-process at the same total batch, b256 x 4
TRITON_P99_MS = Target("<=", 5.0, " ms")  # b1 x 16


def versions() -> dict:
    import onnx
    import onnxruntime as ort
    import torch

    from infogan.bench.machine import gpus

    gpu = (gpus() or [{}])[0]
    return {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "driver": gpu.get("driver"), "cuda": torch.version.cuda, "torch": torch.__version__,
            "onnx": onnx.__version__, "onnxruntime": ort.__version__,
            "onnxruntime_providers": ort.get_available_providers(), "python": platform.python_version()}


def rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x:,.0f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f} ms" if x < 1 else f"{x:.2f} ms"


def _pct(x: float | None) -> str:  # one decimal: 94.9% must not read as the 95% it misses
    return "-" if x is None else f"{100 * x:.1f}%"


def _times(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _judge(checks: list[tuple[str, float | None, Target, callable]]) -> tuple[str, str]:
    """(target cell, result cell) of one row's checks: (what, value, target, how to show a number)."""
    targets = "; ".join(f"{what} {t.op} {show(t.threshold)}".strip() for what, _, t, show in checks)
    results = []
    for _, value, t, show in checks:
        ok = t.check(value)
        results.append("-" if ok is None else ("pass" if ok else "MISS") + f" ({show(value)})")
    return targets, "; ".join(results)


def _server(parts: dict | None) -> str:
    """Where a served request's time went, per request: '; in the server: queue 0.01 ms, ...'."""
    if not parts or all(v is None for v in parts.values()):
        return ""
    return "; in the server: " + ", ".join(f"{k.replace('compute_', '')} {_ms(v)}" for k, v in parts.items())


def _row(what: str, figure: str, checks=()) -> str:
    target, result = _judge(list(checks)) if checks else ("", "")
    return f"| {what} | {figure} | {target} | {result} |"


def table(result: dict) -> str:
    """Markdown: the versions, then one table with a row per step (a row per batch for generation);
    a step that failed, or did not run because an earlier one failed, is a row saying so."""
    if "skipped" in result:
        return result["skipped"]
    v = result["versions"]
    providers = result.get("parity", {}).get("providers") or ["-"]
    provider = providers[0].replace("ExecutionProvider", "")
    failed, not_run = result.get("failed", {}), result.get("not_run", {})
    total = result["seconds"].get("total")
    lines = [
        f"**GPU check** (`make gpu-check`): {v['device']} (driver {v.get('driver') or '-'}), CUDA {v.get('cuda') or '-'}; torch {v['torch']}, "
        f"onnx {v['onnx']}, onnxruntime {v['onnxruntime']} ({provider} provider), Triton {v.get('triton') or '-'}; "
        f"Python {v['python']}; {time.strftime('%Y-%m-%d', time.gmtime())}"
        + (f", {total:.0f} s in all." if total is not None else ", stopped before its end.")
        + ("" if result["gpu"] else " **--cpu**: CPU providers, KIND_CPU and tiny sizes; the targets are the GPU's."),
        "",
        "| what | figure | target | result |",
        "|---|---|---|---|",
    ]
    for name in failed:
        lines.append(_row(f"{name}: FAILED", failed[name]))
    for name in not_run:
        lines.append(_row(f"{name}: not run", not_run[name]))
    if "training" in result:
        t = result["training"]
        lines.append(_row(f"training: default recipe{'' if t['full_recipe'] else ' (shortened)'}, {t['updates']:,} updates at batch "
                          f"{t['batch']}, Q accuracy {_pct(t['accuracy'])}", f"{rate(t['images_per_s'])} images/s (median)",
                          [("", t["images_per_s"], TRAINING, lambda x: f"{rate(x)} images/s")]))
    if "training_threads" in result:
        t = result["training_threads"]
        lines.append(_row(f"training: the first {t['updates']:,} updates by intra-op threads, one after the other",
                          "; ".join(f"{n} thread{'s' if n != '1' else ''} {rate(r)} images/s" for n, r in t["images_per_s"].items())))
    if "export" in result:
        lines.append(_row("export", f"{', '.join(result['export']['precisions'])} in {result['export']['seconds']:.0f} s"))
    if "parity" in result:
        p = result["parity"]
        lines.append(_row(f"parity: onnxruntime {provider} against CPU provider, fp32 generator / encoder",
                          f"{p['generator_max_abs_diff']:.1e} / {p['encoder_max_abs_diff']:.1e}",
                          [("", max(p["generator_max_abs_diff"], p["encoder_max_abs_diff"]), PARITY, lambda x: f"{x:.1e}")]))
    gen = result.get("generation", {"batches": {}})
    for b, row in gen["batches"].items():
        b = int(b)
        cases = [("client API", "api"), ("its run() on drawn latents", "api_run"), ("raw IO-bound session", "raw"),
                 ("PyTorch CUDA graph bf16", "torch_graph"),
                 ("PyTorch eager fp32", "torch_eager")]
        figure = "; ".join(f"{name} {rate(row[key]['images_per_s'])}/s" + (f" (p50 {_ms(row[key]['p50_ms'])})" if b == 1 else "")
                           for name, key in cases if key in row)
        if "torch_graph" not in row and gen.get("torch_graph_note"):
            figure += f"; PyTorch CUDA graph bf16 {gen['torch_graph_note']}"
        checks = []
        if b == 1:
            checks.append(("API p50", row["api"]["p50_ms"], API_BATCH_1_MS, _ms))
        if b in API_RATE:
            checks.append(("API", row["api"]["images_per_s"], API_RATE[b], lambda x: f"{rate(x)}/s"))
        if b in RATIO_BATCHES:
            checks.append(("API/raw", row["api_over_raw"], API_OVER_RAW, _pct))
            checks.append(("API/graph", row["api_over_torch_graph"], API_OVER_GRAPH, _times))
        lines.append(_row(f"generation in process, batch {b:,}", figure, checks))
    if "answer" in result.get("triton", {}):
        a = result["triton"]["answer"]
        what = f"Triton ({result['triton']['kind']}): one request of {a['batch']} over gRPC against the CPU provider"
        lines.append(_row(what, a["error"]) if a.get("error") else
                     _row(what, f"{a['max_abs_diff']:.1e}", [("", a["max_abs_diff"], PARITY, lambda x: f"{x:.1e}")]))
    for key, s in result.get("triton", {"settings": {}})["settings"].items():
        what = f"Triton ({result['triton']['kind']}), batch {s['batch']} x {s['concurrency']} clients"
        figure = (f"{rate(s['images_per_s'])} images/s, {_pct(s['fraction_of_in_process'])} of in-process "
                  f"({rate(s['in_process']['images_per_s'])}/s at batch {s['total_batch']:,}); p99 {_ms(s['p99_ms'])}; "
                  f"executed batch {s['mean_executed_batch'] or 0:.1f}" + _server(s.get("server_ms")))
        checks = []
        if (s["batch"], s["concurrency"]) == (256, 4):
            checks.append(("", s["fraction_of_in_process"], TRITON_FRACTION, _pct))
        if (s["batch"], s["concurrency"]) == (1, 16):
            checks.append(("p99", s["p99_ms"], TRITON_P99_MS, _ms))
        lines.append(_row(what, figure, checks))
    if "backend_session" in result:
        b = result["backend_session"]
        for arm, a in b["arms"].items():
            search = "cuDNN search as served" if arm == "served" else f"cuDNN search {arm.upper()}"
            what = f"a served instance's session ({b['kind']}, {a['file']}) in process, {search}: first call / then (p50)"
            lines.append(_row(what, "; ".join(f"batch {n}: {_ms(r['first_ms'])} / {_ms(r['p50_ms'])}"
                                              for n, r in a["batches"].items())))
    return "\n".join(lines) + "\n"


def _split(path: Path) -> tuple[str, str]:
    """(what lies before the begin marker, what lies after the end marker) in `path`."""
    old = path.read_text() if path.is_file() else ""
    if BEGIN not in old or END not in old.split(BEGIN, 1)[1]:
        raise InfoganError(f"markdown={path} is invalid: it has no {BEGIN} ... {END} markers; "
                           "add them where the GPU table belongs")
    head, rest = old.split(BEGIN, 1)
    return head, rest.split(END, 1)[1]


def check_markdown(path: Path) -> None:
    """Refuse a file without the markers before the check runs, not after."""
    _split(path)


def update_markdown(path: Path, text: str) -> None:
    """Replace what lies between the gpu-check markers in `path`; the rest of the file stays as it is."""
    from infogan.files import write_atomic

    head, tail = _split(path)
    write_atomic(path, f"{head}{BEGIN}\n{text}{END}{tail}")
