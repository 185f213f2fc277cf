"""Train a preset over several seeds and thread counts, one run after another,
and write what every run reached into RESULTS.md: the recipe's spread, not one
lucky run. Rows are kept in sweep.jsonl as each run finishes, so a sweep that
is stopped keeps what it measured and a rerun skips the runs already done."""

from __future__ import annotations

import json
import time
from pathlib import Path

from infogan.bench.machine import cpu_flags, cpu_model
from infogan.contract import InfoganError
from infogan.files import atomic_path, write_atomic
from infogan.training.config import resolve
from infogan.training.train import train


def parse_runs(items: list[str], default_threads: int) -> list[tuple[int, int]]:
    """'0', '1:1' -> [(seed, threads)]; threads default to default_threads."""
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
    if not out:
        raise InfoganError("runs is empty: give at least one seed, like 0 1 2")
    return out


def result_row(run: Path, seed: int, threads: int, minutes: float) -> dict:
    ev = json.loads((run / "evaluation.json").read_text())
    gen = ev.get("generation") or {}
    codes = gen.get("codes", [])
    slant = max((abs(c.get("slant_spearman", c["slant_corr"])) for c in codes), default=None)
    return {
        "run": run.name, "seed": seed, "threads": threads, "cpu": cpu_model(), "cpu_flags": cpu_flags(),
        "minutes": round(minutes, 1), "accuracy": ev["accuracy"], "own": ev["labels_with_own_category"],
        "n_labels": len(ev["label_names"]), "purity_mean": gen.get("purity_mean"),
        "purity_worst": min(gen["purity_per_category"]) if gen else None, "slant_spearman": slant,
        "steps": ev["step"],
    }


def sweep(preset: str, runs: list[tuple[int, int]], out_dir: Path, results: Path,
          data_dir: str = "data", dataset: str = "mnist", progress: bool = True) -> list[dict]:
    """Train each (seed, threads) of `preset` in turn under out_dir; returns every row."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "sweep.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    for seed, threads in runs:
        name = f"{dataset}-{preset}-s{seed}-t{threads}"
        if any(r["run"] == name for r in rows):
            continue
        if (out_dir / name).exists():  # an earlier sweep stopped inside this run
            raise InfoganError(f"{out_dir / name} holds an unfinished run: delete it, or resume it with "
                               f"infogan train --resume {out_dir / name}")
        cfg = resolve(preset, seed=seed, threads=threads, dataset=dataset, data_dir=data_dir,
                      out_dir=str(out_dir), run_name=name)
        t0 = time.perf_counter()
        run = train(cfg, progress=progress)
        rows.append(result_row(run, seed, threads, (time.perf_counter() - t0) / 60))
        with open(log, "a") as f:
            f.write(json.dumps(rows[-1]) + "\n")
        write_results(rows, preset, out_dir, results)
    write_results(rows, preset, out_dir, results)
    return rows


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def write_results(rows: list[dict], preset: str, out_dir: Path, results: Path) -> None:
    """RESULTS.md: one row per run, the mean and worst, and a figure of all accuracy curves."""
    figure = results.with_name(results.stem.lower() + "_curves.png")
    plot_accuracy_curves([out_dir / r["run"] for r in rows], figure)
    lines = [
        f"# Results: `{preset}` preset over seeds and thread counts",
        "",
        "Made by `make sweep` (`infogan sweep`); each row is one `make train` run, timed from start to",
        "finished evaluation and pictures. Q accuracy: Hungarian assignment of Q's categories on the",
        "10,000 test images (labels used for evaluation only). Purity: share of each category's generated",
        "images that the evaluation judge reads as the category's digit. Slant: the largest |Spearman|",
        "between a continuous code and the images' slant (mu11/mu02) over sweeps on [-1, 1].",
        "",
        "| run | seed | threads | CPU | flags | minutes | updates | Q accuracy | digits with own category | purity mean | purity worst | slant (abs. Spearman) |",
        "|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        flags = ", ".join(f for f in r["cpu_flags"] if f.startswith(("amx", "avx512_bf16"))) or "no bf16"
        lines.append(f"| {r['run']} | {r['seed']} | {r['threads']} | {r['cpu']} | {flags} | {r['minutes']:.1f} | "
                     f"{r['steps']:,} | {_pct(r['accuracy'])} | {r['own']}/{r['n_labels']} | {_pct(r['purity_mean'])} | "
                     f"{_pct(r['purity_worst'])} | {'-' if r['slant_spearman'] is None else format(r['slant_spearman'], '.2f')} |")
    if rows:
        acc = [r["accuracy"] for r in rows]
        lines += ["", f"{len(rows)} runs: Q accuracy mean {_pct(sum(acc) / len(acc))}, worst {_pct(min(acc))}; "
                      f"all ten digits with a category of their own in {sum(r['own'] == r['n_labels'] for r in rows)} of {len(rows)}."]
    lines += ["", f"![Q accuracy of every run against images seen]({figure.name})", ""]
    write_atomic(results, "\n".join(lines))


def plot_accuracy_curves(runs: list[Path], out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        evals = [r for r in rows if r.get("kind") == "eval"]
        ax.plot([r["images_seen"] / 1e6 for r in evals], [100 * r["accuracy"] for r in evals], label=run.name, lw=1.2)
    ax.axhline(95, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("images seen (millions)"); ax.set_ylabel("Q test accuracy (%)"); ax.set_ylim(0, 100)
    ax.grid(alpha=0.3); ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
