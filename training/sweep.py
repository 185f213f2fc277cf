"""Train a preset over several seeds and thread counts and write what every run
reached into RESULTS.md: the recipe's spread, not one lucky run. The table of each dataset
swept is rewritten; another dataset's table and the notes below the tables stay. Rows are kept in
sweep.jsonl as each run finishes, so a sweep that is stopped keeps what it
measured and a rerun skips the runs already done.

With parallel=N, N runs train at once, each in a process of its own (`python -m
infogan.cli train`: on one GPU they share it, on the CPU each takes cores // N
threads by default), so one run's crash ends that run alone; its last line is
reported once the others finish. Each row records the runs that trained beside
it, and the table gives their summed throughput: what the machine delivers at N."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from infogan import defaults
from infogan.contract import InfoganError
from infogan.files import atomic_path, write_atomic
from infogan.machine import cpu_count, cpu_flags, cpu_model
from infogan.training.config import resolve
from infogan.training.data import DATASETS, UNRECORDED_DATASET
from infogan.training.metrics_log import METRICS_FILE, read_metrics
from infogan.training.train import train

POLL_S = 0.2  # how often a parallel sweep looks for finished processes


def check_parallel(parallel: int, n_runs: int) -> None:
    if not 1 <= parallel <= n_runs:
        raise InfoganError(f"parallel={parallel} is invalid: give 1 to {n_runs}, the number of runs in the sweep")


def parse_runs(items: list[str], default_threads: int | None = None, parallel: int = 1) -> list[tuple[int, int]]:
    """'0', '1:1' -> [(seed, threads)]; threads default to default_threads, else to
    the cores shared among the `parallel` runs that train at once."""
    if not items:
        raise InfoganError("runs is empty: give at least one seed, like 0 1 2")
    check_parallel(parallel, len(items))
    if default_threads is None:
        default_threads = max(1, cpu_count() // parallel)
    out = []
    for item in items:
        seed, _, threads = item.partition(":")
        try:
            pair = (int(seed), int(threads) if threads else default_threads)
        except ValueError:
            raise InfoganError(f"runs item {item!r} is invalid: give a seed or seed:threads, like 0 or 0:1") from None
        if pair[0] < 0 or pair[1] < 1:
            raise InfoganError(f"runs item {item!r} is invalid: seed must be >= 0 and threads >= 1")
        out.append(pair)
    return out


def median_images_per_s(run: Path) -> float | None:
    """The run's training throughput: the median of its logged rates (the first, with its warm-up, weighs little)."""
    rates = [r["images_per_s"] for r in read_metrics(run / METRICS_FILE, "train") if "images_per_s" in r]
    return statistics.median(rates) if rates else None


def training_gpu(run: Path) -> str | None:
    """The GPU a run on this machine trained on (train() takes CUDA where torch sees it) and its
    precision there (train.py's rule: bf16 autocast where the GPU has bf16, unless the run asked
    for fp32), else None."""
    import torch

    if not torch.cuda.is_available():
        return None
    precision = json.loads((run / defaults.RUN_CONFIG_FILE).read_text()).get("precision", "auto")
    amp = precision != "fp32" and torch.cuda.is_bf16_supported()
    return f"{torch.cuda.get_device_name(0)}, {'bf16 autocast' if amp else 'fp32'}"


def machine_cells(row: dict) -> tuple[str, str]:
    """The table's CPU and flags cells: a run that trained on a GPU names it beside its host CPU, and
    its precision there (bf16 autocast where the GPU has it), not the CPU's bf16 flags it never used."""
    if row.get("gpu"):
        name, _, precision = row["gpu"].rpartition(", ")
        return f"{row['cpu']} with {name}", f"GPU, {precision}"
    return row["cpu"], ", ".join(f for f in row["cpu_flags"] if f.startswith(("amx", "avx512_bf16"))) or "no bf16"


def result_row(run: Path, seed: int, threads: int, minutes: float, alongside: list[str] | None = None) -> dict:
    """What a finished run reached; `alongside`: the runs that trained at the same time (itself included)."""
    ev = json.loads((run / defaults.EVALUATION_FILE).read_text())
    gen = ev.get("generation") or {}
    codes = gen.get("codes", [])
    slant = max((abs(c.get("slant_spearman", c["slant_corr"])) for c in codes), default=None)
    return {
        "run": run.name, "dataset": ev["dataset"], "seed": seed, "threads": threads, "cpu": cpu_model(), "cpu_flags": cpu_flags(),
        "gpu": training_gpu(run),
        "minutes": round(minutes, 1), "accuracy": ev["accuracy"], "own": ev["labels_with_own_category"],
        "accuracy_live": (ev.get("encoder_live") or {}).get("accuracy"),  # with q_ema_decay: D-and-Q's latest weights
        "n_labels": len(ev["label_names"]), "purity_mean": gen.get("purity_mean"),
        "purity_worst": min(gen["purity_per_category"]) if gen else None, "slant_spearman": slant,
        "fidelity_ratio": (gen.get("fidelity") or {}).get("ratio"),
        "steps": ev["step"], "images_per_s": median_images_per_s(run), "alongside": alongside or [run.name],
    }


def total_images_per_s(row: dict, rows: list[dict]) -> float | None:
    """The summed median throughput of the runs that trained beside this one (None for rows
    written before throughput was recorded)."""
    names = set(row.get("alongside") or [])
    rates = [r.get("images_per_s") for r in rows if r["run"] in names]
    return sum(rates) if rates and None not in rates else None


def run_name(dataset: str, preset: str, seed: int, threads: int) -> str:
    return f"{dataset}-{preset}-s{seed}-t{threads}"


def sweep(preset: str, runs: list[tuple[int, int]], out_dir: Path, results: Path,
          data_dir: str = defaults.DATA_DIR, dataset: str = defaults.DATASET, progress: bool = True, parallel: int = 1,
          log=lambda _: None) -> list[dict]:
    """Train each (seed, threads) of `preset` under out_dir, `parallel` at a time; returns every row."""
    check_parallel(parallel, len(runs))
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = out_dir / "sweep.jsonl"
    rows = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()] if journal.exists() else []
    done = {r["run"] for r in rows}
    pending: dict[str, tuple[int, int]] = {}
    for seed, threads in runs:
        name = run_name(dataset, preset, seed, threads)
        if name in done or name in pending:
            continue
        if (out_dir / name).exists():  # an earlier sweep stopped inside this run
            raise InfoganError(f"{out_dir / name} holds an unfinished run: delete it, or resume it with "
                               f"infogan train --resume {out_dir / name}")
        pending[name] = (seed, threads)

    def record(row: dict) -> None:
        rows.append(row)
        with open(journal, "a") as f:
            f.write(json.dumps(row) + "\n")
        write_results(rows, preset, out_dir, results)

    names = list(pending)
    for start in range(0, len(names), parallel):
        group = {n: pending[n] for n in names[start:start + parallel]}
        if parallel == 1:
            (name, (seed, threads)), = group.items()
            cfg = resolve(preset, seed=seed, threads=threads, dataset=dataset, data_dir=data_dir,
                          out_dir=str(out_dir), run_name=name)
            t0 = time.perf_counter()
            run = train(cfg, progress=progress)
            record(result_row(run, seed, threads, (time.perf_counter() - t0) / 60))
        else:
            _train_at_once(group, preset, dataset, data_dir, out_dir, record, log)
    write_results(rows, preset, out_dir, results)
    return rows


def train_command(preset: str, dataset: str, seed: int, threads: int, data_dir: str, out_dir: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "infogan.cli", "train", "--preset", preset, "--dataset", dataset,
            "--seed", str(seed), "--threads", str(threads), "--data-dir", str(data_dir),
            "--runs-dir", str(out_dir), "--run-name", name, "--no-progress"]


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _train_at_once(group: dict[str, tuple[int, int]], preset: str, dataset: str, data_dir: str, out_dir: Path,
                   record, log) -> None:
    """Every run of the group in a process of its own; each row is recorded as its run finishes.
    A failed run leaves its folder (so a rerun refuses it as unfinished) and its output in
    <out_dir>/<run>.log; the others finish before the failure is raised."""
    procs: dict[str, tuple[subprocess.Popen, float]] = {}
    failures = []
    try:
        for name, (seed, threads) in group.items():
            with open(out_dir / f"{name}.log", "wb") as out:  # the child holds its own descriptor
                proc = subprocess.Popen(train_command(preset, dataset, seed, threads, data_dir, out_dir, name),
                                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            procs[name] = (proc, time.perf_counter())
            log(f"{name}: training in process {proc.pid} ({threads} threads)")
        while procs:
            time.sleep(POLL_S)
            for name, (proc, t0) in list(procs.items()):
                if proc.poll() is None:
                    continue
                del procs[name]
                if proc.returncode:
                    failures.append(f"{name} failed (exit {proc.returncode}): {_last_line(out_dir / f'{name}.log')}")
                    log(failures[-1])
                    continue
                seed, threads = group[name]
                record(result_row(out_dir / name, seed, threads, (time.perf_counter() - t0) / 60, list(group)))
                log(f"{name}: finished")
    finally:
        for proc, _ in procs.values():  # only when the sweep itself was interrupted
            proc.terminate()
            proc.wait()
    if failures:
        raise InfoganError("; ".join(failures) + f" (whole output in {out_dir}/<run>.log)")


def _pct(x, decimals: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{decimals}f}%"


def _accuracy_pct(x) -> str:
    """Q accuracy to two decimals: targets sit a tenth of a point apart (98.67% is not 98.7%)."""
    return _pct(x, decimals=2)


def _accuracy_text(row: dict) -> str:
    """'98.67%', or '98.67% (live 98.12%)' for a run that published D-and-Q's moving average."""
    live = row.get("accuracy_live")
    return _accuracy_pct(row["accuracy"]) + ("" if live is None else f" (live {_accuracy_pct(live)})")


def _rate(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def rate_text(row: dict, rows: list[dict]) -> str:
    """'1,234 | 2,400 (2)': the run's images/s, then the total over the runs beside it and their number."""
    n = len(row.get("alongside") or [])
    return f"{_rate(row.get('images_per_s'))} | {_rate(total_images_per_s(row, rows))}" + (f" ({n})" if n else "")



def _title(dataset: str) -> str:
    """The dataset's name as headings give it (its key, for one this version does not know)."""
    return DATASETS[dataset].title if dataset in DATASETS else dataset


def row_dataset(row: dict, out_dir: Path) -> str:
    """The row's dataset; rows journalled before it was recorded read it from their run's evaluation."""
    if "dataset" in row:
        return row["dataset"]
    evaluation = out_dir / row["run"] / defaults.EVALUATION_FILE
    return json.loads(evaluation.read_text()).get("dataset", UNRECORDED_DATASET) if evaluation.is_file() else UNRECORDED_DATASET


def curves_figure(results: Path, dataset: str) -> Path:
    """results_curves.png for MNIST (the name README links), results_curves_<dataset>.png for the others."""
    suffix = "" if dataset == "mnist" else f"_{dataset}"
    return results.with_name(f"{results.stem.lower()}_curves{suffix}.png")


def write_results(rows: list[dict], preset: str, out_dir: Path, results: Path) -> None:
    """RESULTS.md: for each dataset, one row per run, the mean and worst, and a figure of its accuracy curves.
    A dataset without rows here keeps the table results already holds for it, and every section a person wrote stays."""
    by_dataset: dict[str, list[dict]] = {}
    for r in rows:
        by_dataset.setdefault(row_dataset(r, out_dir), []).append(r)
    lines = [
        f"# Results: `{preset}` preset over seeds and thread counts",
        "",
        "Made by `make sweep` (`infogan sweep`); each row is one `make train` run, timed from start to",
        "finished evaluation and pictures. Q accuracy: Hungarian assignment of Q's categories on the",
        "10,000 test images (labels used for evaluation only); where the encoder published is a moving",
        "average of D-and-Q's weights (`q_ema_decay`), the accuracy of their latest weights follows in brackets.",
        "Purity: share of each category's generated images that the evaluation judge reads as the category's",
        "class. Slant: the largest |Spearman| between a continuous code and the images' slant (mu11/mu02)",
        "over sweeps on [-1, 1]. Fidelity: the",
        "Fréchet distance of 10,000 generated images to the 10,000 test images in the judge's features, as a",
        "multiple of the real-vs-real floor (10,000 training images against the same test images; 1x is real).",
        "Images/s: the median of the run's logged training rates; total: the sum over the runs that",
        "trained at the same time (`infogan sweep --parallel N`), the machine's throughput at N.",
    ]
    tables = _kept_tables(results, {_title(d) for d in by_dataset})
    for dataset, group in by_dataset.items():
        figure = curves_figure(results, dataset)
        plot_accuracy_curves([out_dir / r["run"] for r in group], figure)
        table = [
            f"### {_title(dataset)}", "",
            "| run | seed | threads | CPU | flags | minutes | updates | Q accuracy | classes with own category | purity mean | purity worst | slant (abs. Spearman) | fidelity (x floor) | images/s | total images/s (runs at once) |",
            "|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for r in group:
            cpu, flags = machine_cells(r)
            table.append(f"| {r['run']} | {r['seed']} | {r['threads']} | {cpu} | {flags} | {r['minutes']:.1f} | "
                         f"{r['steps']:,} | {_accuracy_text(r)} | {r['own']}/{r['n_labels']} | {_pct(r['purity_mean'])} | "
                         f"{_pct(r['purity_worst'])} | {'-' if r['slant_spearman'] is None else format(r['slant_spearman'], '.2f')} | "
                         f"{'-' if r.get('fidelity_ratio') is None else format(r['fidelity_ratio'], '.2f')} | {rate_text(r, rows)} |")
        acc = [r["accuracy"] for r in group]
        table += ["", f"{len(group)} runs: Q accuracy mean {_accuracy_pct(sum(acc) / len(acc))}, worst {_accuracy_pct(min(acc))}; every class "
                      f"with a category of its own in {sum(r['own'] == r['n_labels'] for r in group)} of {len(group)}.",
                  "", f"![Q accuracy of every {_title(dataset)} run against images seen]({figure.name})"]
        tables[_title(dataset)] = table
    order = [DATASETS[d].title for d in DATASETS]
    for title in sorted(tables, key=lambda t: order.index(t) if t in order else len(order)):
        lines += ["", *tables[title]]
    lines += ["", ""]  # a blank line before the notes
    write_atomic(results, "\n".join(lines) + _hand_written(results))


def _kept_tables(results: Path, written: set[str]) -> dict[str, list[str]]:
    """The tables (### sections above the notes) that results holds for the datasets not in
    `written`, by title: a sweep of one dataset keeps another dataset's table and figure."""
    old = results.read_text() if results.is_file() else ""
    at = old.find("\n## ")
    kept = {}
    for block in (old if at < 0 else old[:at]).split("\n### ")[1:]:
        title = block.split("\n", 1)[0].strip()
        if title not in written:
            kept[title] = f"### {block}".rstrip("\n").split("\n")
    return kept


def _hand_written(results: Path) -> str:
    """The sections (## headings) a person added below the generated table: a new sweep keeps them."""
    old = results.read_text() if results.is_file() else ""
    at = old.find("\n## ")
    return "" if at < 0 else old[at + 1:]


def plot_accuracy_curves(runs: list[Path], out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # left: whole runs on 0-100%; right: their last half, on a scale that shows the differences between runs
    fig, (whole, late) = plt.subplots(1, 2, figsize=(10, 4))
    finals = []
    for run in runs:
        evals = read_metrics(run / METRICS_FILE, "eval")
        x, y = [r["images_seen"] / 1e6 for r in evals], [100 * r["accuracy"] for r in evals]
        whole.plot(x, y, label=run.name, lw=1.2)
        tail = [(a, b) for a, b in zip(x, y) if a >= x[-1] / 2]
        late.plot([a for a, _ in tail], [b for _, b in tail], label=run.name, lw=1.2, marker=".")
        finals += [b for _, b in tail]
    whole.set_ylim(0, 100); whole.set_title("whole runs", fontsize=9)
    if finals:
        late.set_ylim(max(0.0, min(finals) - 1), min(100.0, max(finals) + 0.5))
    late.set_title("second half, zoomed", fontsize=9)
    for ax in (whole, late):
        ax.set_xlabel("images seen (millions)"); ax.set_ylabel("Q test accuracy (%)"); ax.grid(alpha=0.3)
    whole.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
