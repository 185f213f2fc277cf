"""The results as one table, the targets beside the figures, and the JSON files.

Targets are shown with pass/miss and recorded in the JSON; nothing asserts them.
"""

from __future__ import annotations

import json
import operator
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table

# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    op: str  # ">=", ">" or "<="
    threshold: float
    unit: str = ""  # "x", "%", " ms" or ""

    def check(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return {">=": operator.ge, ">": operator.gt, "<=": operator.le}[self.op](value, self.threshold)

    def text(self) -> str:
        return f"{self.op} {fmt(self.threshold, self.unit)}"


SPEEDUP = Target(">=", 1.8, "x")
COMPUTE_FRACTION = Target(">=", 0.80, "%")
API_OVER_RAW = Target(">=", 0.95, "%")
API_OVER_TORCH = Target(">=", 1.2, "x")
TRITON_B1_C1_MEAN = Target("<=", 1.0, " ms")
TRITON_B1_C16_FRACTION = Target(">=", 0.40, "%")
TRITON_B1_C16_P99 = Target("<=", 10.0, " ms")
TRITON_B1_C16_BATCH = Target(">", 4.0)
TRITON_B64_C4_FRACTION = Target(">=", 0.90, "%")
EXPLORE_SLIDER_MS = Target("<=", 100.0, " ms")  # a slider move to a new 8x8 grid, median round trip
API_TARGET_BATCH = 256  # where the API's overhead target applies (the working batch of the client's generate())
COMPUTE_TARGET_BATCHES = (256, 1024)  # latency-bound small batches are shown, not judged


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{100 * value:.0f}%"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == " ms":
        return f"{value:.2f} ms"
    if unit == "ms":  # the latency columns: the header names the unit
        return f"{value:.2f}"
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# ---------------------------------------------------------------- rows


@dataclass
class Row:
    section: str
    case: str
    images_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    figure: str = ""
    value: float | str | None = None
    unit: str = ""
    target: Target | None = None

    @property
    def ok(self) -> bool | None:
        return self.target.check(self.value) if self.target and not isinstance(self.value, str) else None

    def to_dict(self) -> dict:
        return {"section": self.section, "case": self.case, "figure": self.figure, "value": self.value,
                "target": self.target.text() if self.target else None, "pass": self.ok}


def _timed(section: str, case: str, s: dict, **kw) -> Row:
    return Row(section, case, s.get("images_per_s"), s.get("p50_ms"), s.get("p99_ms"), **kw)


def training_rows(t: dict) -> list[Row]:
    sec = f"training (batch {t['batch_size']})"
    bf16 = t.get("matmul_bf16_gflops")
    return [
        Row(sec, f"ours ({t['precision']})", t["ours_images_per_s"], figure="speedup vs naive",
            value=t["speedup"], unit="x", target=SPEEDUP),
        Row(sec, "naive eager fp32", t["naive_images_per_s"]),
        Row(sec, "work per image", figure="FLOPs / image (naive step)", value=f"{t['flops_per_image'] / 1e6:.0f} MFLOP"),
        Row(sec, "matmul rate", figure="fp32 / bf16 GFLOP/s",
            value=f"{t['matmul_fp32_gflops']:.0f} / {bf16:.0f}" if bf16 else f"{t['matmul_fp32_gflops']:.0f} / -"),
        Row(sec, "ours vs compute limit", figure="FLOP rate / fp32 matmul",
            value=t["ours_fraction_of_fp32_matmul"], unit="%", target=COMPUTE_FRACTION),
        *allocator_rows(t.get("allocator") or {}),
    ]


def allocator_rows(a: dict) -> list[Row]:
    """The project's step in fresh interpreters: glibc's allocator defaults, then the memory training keeps."""
    rows = []
    for c in a.get("cases", []):
        sec = f"training step, trunk {c['trunk_channels']} ({c['threads']} thread{'s' if c['threads'] > 1 else ''})"
        rows += [Row(sec, "glibc allocator defaults", c["glibc_images_per_s"]),
                 Row(sec, "freed memory kept (training)", c["keep_images_per_s"], figure="speedup",
                     value=c["speedup"], unit="x")]
    return rows


def upconv_rows(u: dict) -> list[Row]:
    sec = f"generator graph (raw session, batch {u['batch']})"
    rows = [Row(sec, "matmul rate", figure="fp32 GFLOP/s", value=f"{u['matmul_gflops']:.0f}")]
    for name in [k[:-3] for k in u if k.endswith("_ms") and k != "matmul_ms"]:
        rows.append(Row(sec, name, u["batch"] / u[f"{name}_ms"] * 1e3, p50_ms=u[f"{name}_ms"],
                        figure="useful GFLOP/s / matmul", value=u[f"{name}_gflops"] / u["matmul_gflops"], unit="%"))
    rows.append(Row(sec, "phase vs plain", figure="speedup", value=u["plain_ms"] / u["phase_ms"], unit="x"))
    return rows


def generation_rows(g: dict) -> list[Row]:
    rows = []
    mm = g["matmul_gflops"]
    provider = (g.get("providers") or ["?"])[0].removesuffix("ExecutionProvider")
    rows.append(Row(f"generation ({provider})", "matmul rate", figure="fp32 GFLOP/s: ort / torch",
                    value=f"{mm['onnxruntime']:.0f} / {mm['torch']:.0f}"))
    for model in ("generator", "encoder"):
        flops = g["flops_per_image"][model]
        api_name = "generate()" if model == "generator" else "encode()"
        for batch in g["batches"]:
            f = g[model][str(batch)]
            sec = f"{model}, {flops / 1e6:.1f} MFLOP/img"
            case = f"b={batch}"
            rows += [
                _timed(sec, f"{case} api {api_name}", f["api"], figure="api / raw", value=f["api_over_raw"], unit="%",
                       target=API_OVER_RAW if batch == API_TARGET_BATCH else None),
                _timed(sec, f"{case} api run()", f["api_run"], figure="api run() / raw", value=f["api_run_over_raw"], unit="%"),
                _timed(sec, f"{case} raw session", f["raw"], figure=f"{f['raw_gflops']:.0f} GFLOP/s / matmul",
                       value=f["raw_fraction_of_matmul"], unit="%",
                       target=COMPUTE_FRACTION if batch in COMPUTE_TARGET_BATCHES else None),
                _timed(sec, f"{case} torch eager", f["torch"], figure="api / torch", value=f["api_over_torch"], unit="x",
                       target=API_OVER_TORCH),
            ]
    return rows


def variant_rows(v: dict) -> list[Row]:
    rows = []
    for precision, r in v.items():
        sec = f"variant {precision} (raw session)"
        for kind in ("generator", "encoder"):
            if kind in r:
                rows.append(_timed(sec, f"{kind} b={r[kind]['batch']}", r[kind], figure="vs fp32",
                                   value=r[kind]["over_fp32"], unit="x"))
        q = r.get("quality") or {}
        if q:
            if "q_accuracy" in q:
                rows.append(Row(sec, "quality", figure="Q accuracy (fp32)",
                                value=f"{q['q_accuracy']:.4f} ({q['q_accuracy_fp32']:.4f})"))
            rows.append(Row(sec, "quality", figure="category kept (fp32)",
                            value=f"{q['category_kept']:.3f} ({q['category_kept_fp32']:.3f})"))
            rows.append(Row(sec, "quality", figure="argmax agrees / max diff",
                            value=f"{q['argmax_agreement']:.3f} / {q['image_max_abs_diff']:.2g}"))
    return rows


def gpu_rows(gpu: dict | None) -> list[Row]:
    if not gpu:
        return [Row("gpu", "no GPU", figure="CUDA not available to torch")]
    rows = [Row(f"gpu: {gpu['device']}", "matmul rate", figure="fp32 GFLOP/s", value=f"{gpu['matmul_gflops_fp32']:.0f}")]
    for model in ("generator", "encoder"):
        for batch, cases in gpu[model].items():
            for name, s in cases.items():
                rows.append(_timed(f"gpu: {gpu['device']}", f"{model} b={batch} {name}", s))
    return rows


TRITON_TARGETS: dict[str, list[tuple[str, str, str, Target]]] = {
    # setting -> (result key, figure, unit, target)
    "b1_c1": [("mean_ms", "mean latency", " ms", TRITON_B1_C1_MEAN)],
    "b1_c16": [("p99_ms", "p99 latency", " ms", TRITON_B1_C16_P99),
               ("mean_executed_batch", "mean executed batch", "", TRITON_B1_C16_BATCH)],
}
TRITON_FRACTION_TARGETS = {"b1_c16": TRITON_B1_C16_FRACTION, "b64_c4": TRITON_B64_C4_FRACTION}


def triton_rows(t: dict) -> list[Row]:
    sec = f"triton {t['server']['version']} gRPC, {t['model'].removeprefix('infogan_')} ({t.get('client', 'asyncio')} client)"
    rows = []
    for key, r in t["settings"].items():
        case = f"b={r['batch']} x c={r['concurrency']}"
        rows.append(_timed(sec, case, r, figure=f"of in-process b={r['total_batch']}", value=r["fraction_of_in_process"],
                           unit="%", target=TRITON_FRACTION_TARGETS.get(key)))
        extra = TRITON_TARGETS.get(key, [])
        if not any(k == "mean_executed_batch" for k, *_ in extra):
            rows.append(Row(sec, case, figure="mean executed batch", value=r["mean_executed_batch"]))
        for k, figure, unit, target in extra:
            rows.append(Row(sec, case, figure=figure, value=r[k], unit=unit, target=target))
    for key, c in t.get("client_check", {}).items():
        rows.append(Row(f"{sec}, load client", key.replace("_c", " x c=").replace("b", "b=", 1),
                        figure="Python asyncio client / C++ h2load", value=c["asyncio_over_h2load"], unit="x"))
    return rows


def explore_rows(e: dict) -> list[Row]:
    sec = f"explorer: slider move to a new {e['batch']}-image grid"
    return [
        _timed(sec, "handler (grid + traversal)", e["handler"], figure="p50", value=e["handler"]["p50_ms"], unit=" ms"),
        _timed(sec, "HTTP round trip + PNG", e["round_trip"], figure="p50", value=e["round_trip"]["p50_ms"], unit=" ms",
               target=EXPLORE_SLIDER_MS),
    ]


def all_rows(results: dict) -> list[Row]:
    s = results["sections"]
    rows: list[Row] = []
    makers: list[tuple[str, Callable[[dict], list[Row]]]] = [("upconv", upconv_rows), ("training", training_rows),
                                                            ("generation", generation_rows), ("triton", triton_rows),
                                                            ("explore", explore_rows)]
    for name, make in makers:
        if name not in s:
            continue
        if "error" in s[name]:
            rows.append(Row(name, "failed", figure=s[name]["error"].splitlines()[0][:100]))
            continue
        rows += make(s[name])
        if name == "generation":
            rows += variant_rows(s[name].get("variants") or {})
            rows += gpu_rows(s[name].get("gpu"))
    return rows


# ---------------------------------------------------------------- output


def judged_value(value: float | None, unit: str, target: Target | None) -> str:
    """fmt(value), with as many more digits as it takes where rounding would show the
    threshold itself (89.5% judged against 90% reads "89.5% miss", not "90% miss")."""
    text = fmt(value, unit)
    if target is None or value is None or value == target.threshold or text != fmt(target.threshold, unit):
        return text
    scale, suffix, digits = (100, "%", 0) if unit == "%" else (1, unit, 2)
    while digits < 6:  # the first precision at which value and threshold differ
        digits += 1
        text = f"{scale * value:.{digits}f}{suffix}"
        if text != f"{scale * target.threshold:.{digits}f}{suffix}":
            break
    return text


def _cell(row: Row) -> tuple[str, str]:
    value = row.value if isinstance(row.value, str) else judged_value(row.value, row.unit, row.target)
    status = {True: "[green]pass[/]", False: "[red]miss[/]", None: ""}[row.ok]
    return value, status


COLUMNS = (("section", "left"), ("case", "left"), ("img/s", "right"), ("p50 ms", "right"), ("p99 ms", "right"),
           ("figure", "left"), ("value", "right"), ("target", "left"), ("", "left"))


def header_lines(results: dict) -> list[str]:
    """When, where and with what the figures were measured."""
    m, v, c = results["machine"], results["versions"], results["git"]
    load = results["load_average"]
    lines = [
        f"Measured {results['started']} ({results['mode']} suite, {results['seconds']['total']:.0f} s) at commit "
        f"`{str(c['commit'])[:10]}`{' with uncommitted changes' if c['dirty'] else ''}.",
        f"Machine: {m['cpu']}, {m['usable_cores']} cores ({', '.join(m['cpu_flags'])}), "
        f"{', '.join(g['name'] for g in m['gpus']) or 'no GPU'}; load average {load['start']} at the start, {load['end']} at the end.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
    ]
    if results.get("model"):
        lines.append(f"Model: {results['model']['source']}.")
    return lines


def table_rows(results: dict) -> list[tuple[bool, list[str], bool | None]]:
    """(starts a new section, the cells, pass/miss/None) per row; a section's name and a
    case's label are written once, on their first row."""
    out, last = [], (None, None)
    for row in all_rows(results):
        value, _ = _cell(row)
        cells = [row.section if row.section != last[0] else "", row.case if (row.section, row.case) != last else "",
                 fmt(row.images_per_s), fmt(row.p50_ms, "ms"), fmt(row.p99_ms, "ms"), row.figure, value,
                 row.target.text() if row.target else ""]
        out.append((last[0] is not None and row.section != last[0], cells, row.ok))
        last = (row.section, row.case)
    return out


def render(results: dict, console: Console | None = None) -> None:
    console = console or Console(width=max(shutil.get_terminal_size((150, 40)).columns, 150))
    console.print("[bold]infogan benchmarks[/]")
    for line in header_lines(results):
        console.print(line, highlight=False)
    table = Table(show_lines=False, header_style="bold")
    for col, just in COLUMNS:
        table.add_column(col, justify=just)
    for new_section, cells, ok in table_rows(results):
        if new_section:
            table.add_section()
        table.add_row(*cells, {True: "[green]pass[/]", False: "[red]miss[/]", None: ""}[ok])
    console.print(table)


def write_json(results: dict, out_dir: Path) -> Path:
    """bench_results/<UTC timestamp>.json and a copy as latest.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = dict(results, targets=[r.to_dict() for r in all_rows(results) if r.target])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(results, indent=2, default=str)
    path = out_dir / f"{stamp}.json"
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    return path


# ---------------------------------------------------------------- BENCHMARKS.md

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def markdown(results: dict) -> str:
    """The header and the table as Markdown, for BENCHMARKS.md."""
    lines = [f"- {line}" for line in header_lines(results)]
    lines += ["", "| " + " | ".join(col for col, _ in COLUMNS) + " |",
              "|" + "|".join("--:" if just == "right" else "---" for _, just in COLUMNS) + "|"]
    for _, cells, ok in table_rows(results):
        lines.append("| " + " | ".join(cells + [{True: "pass", False: "**miss**", None: ""}[ok]]) + " |")
    return "\n".join(lines) + "\n"


def update_markdown(path: Path, results: dict) -> None:
    """Replace the table between the bench markers in `path` (appended when the markers are absent)."""
    block = f"{BEGIN}\n{markdown(results)}{END}"
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + block + "\n"
    path.write_text(text)
