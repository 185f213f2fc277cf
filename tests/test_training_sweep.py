"""infogan sweep: runs one after another, RESULTS.md and its figure, reruns skip finished runs."""

import json

import pytest
from PIL import Image

from infogan.contract import InfoganError
from infogan.training.sweep import parse_runs, sweep


def test_runs_parse_as_seed_or_seed_and_threads():
    assert parse_runs(["0", "1", "2:1"], default_threads=2) == [(0, 2), (1, 2), (2, 1)]
    for bad in (["x"], ["0:0"], ["-1"], []):
        with pytest.raises(InfoganError, match="runs"):
            parse_runs(bad, default_threads=2)


def test_sweep_writes_a_row_per_run_and_a_rerun_trains_nothing(tmp_path, data_dir):
    results = tmp_path / "RESULTS.md"
    rows = sweep("smoke", [(0, 1), (1, 1)], tmp_path / "sweep", results, data_dir=str(data_dir), progress=False)
    assert [(r["seed"], r["threads"]) for r in rows] == [(0, 1), (1, 1)]
    text = results.read_text()
    table = [line for line in text.splitlines() if line.startswith("| mnist-smoke-")]
    assert len(table) == 2 and "| 0 | 1 |" in table[0] and "| 1 | 1 |" in table[1]
    assert rows[0]["cpu"] in table[0] and "2 runs: Q accuracy mean" in text
    Image.open(tmp_path / "results_curves.png").verify()
    checkpoint = tmp_path / "sweep" / "mnist-smoke-s0-t1" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    notes = "## About the table above\n\nWritten by hand.\n"
    results.write_text(text + "\n" + notes)  # a person's notes below the table
    again = sweep("smoke", [(0, 1), (1, 1)], tmp_path / "sweep", results, data_dir=str(data_dir), progress=False)
    assert again == rows and checkpoint.stat().st_mtime_ns == before
    assert results.read_text().endswith(notes) and results.read_text().count("2 runs: Q accuracy mean") == 1
    assert len((tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()) == 2
    assert json.loads((tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()[0])["accuracy"] == rows[0]["accuracy"]


# ---------------------------------------------------------------- --parallel N: runs at once, in processes of their own


def test_runs_train_at_once_and_the_table_gives_their_total_rate(tmp_path, data_dir):
    from infogan.training import sweep as sweep_module

    results = tmp_path / "RESULTS.md"
    rows = sweep("smoke", [(0, 1), (1, 1)], tmp_path / "sweep", results, data_dir=str(data_dir), parallel=2)
    names = ["mnist-smoke-s0-t1", "mnist-smoke-s1-t1"]
    assert sorted(r["run"] for r in rows) == names
    for r in rows:
        assert sorted(r["alongside"]) == names and r["images_per_s"] > 0
        assert r["images_per_s"] == sweep_module.median_images_per_s(tmp_path / "sweep" / r["run"])
        # each run trained in a process of its own, through the CLI, which logged its summary
        assert "Q test accuracy" in (tmp_path / "sweep" / f"{r['run']}.log").read_text()
    total = rows[0]["images_per_s"] + rows[1]["images_per_s"]
    assert sweep_module.total_images_per_s(rows[0], rows) == sweep_module.total_images_per_s(rows[1], rows) == total
    table = [line for line in results.read_text().splitlines() if line.startswith("| mnist-smoke-")]
    assert len(table) == 2 and all(line.endswith(f"| {total:,.0f} (2) |") for line in table)
    # a rerun trains nothing: both rows are in sweep.jsonl
    again = sweep("smoke", [(0, 1), (1, 1)], tmp_path / "sweep", results, data_dir=str(data_dir), parallel=2)
    assert again == rows


@pytest.mark.slow
def test_a_failed_run_is_reported_in_one_line_after_the_others_finish(tmp_path, data_dir, monkeypatch):
    from infogan.training import sweep as sweep_module

    real = sweep_module.train_command

    def seed_1_fails(preset, *args):  # the real CLI, refusing an unknown preset for seed 1 only
        return real("no-such-preset" if args[1] == 1 else preset, *args)

    monkeypatch.setattr(sweep_module, "train_command", seed_1_fails)
    with pytest.raises(InfoganError) as err:
        sweep("smoke", [(0, 1), (1, 1)], tmp_path / "sweep", tmp_path / "RESULTS.md", data_dir=str(data_dir), parallel=2)
    assert "\n" not in str(err.value)
    assert "mnist-smoke-s1-t1 failed (exit 2): error: preset='no-such-preset' is unknown" in str(err.value)
    rows = [json.loads(line) for line in (tmp_path / "sweep" / "sweep.jsonl").read_text().splitlines()]
    assert [r["run"] for r in rows] == ["mnist-smoke-s0-t1"]  # the other run finished and was recorded


def test_threads_default_to_the_cores_shared_among_the_runs_at_once():
    from infogan.sessions import cpu_count

    assert parse_runs(["0", "1:3"], parallel=2) == [(0, max(1, cpu_count() // 2)), (1, 3)]
    assert parse_runs(["0"]) == [(0, cpu_count())]


@pytest.mark.parametrize("parallel", ["0", "3"])
def test_parallel_outside_one_to_the_number_of_runs_is_refused_in_one_line(parallel, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "infogan.cli", "sweep", "0", "1", "--preset", "smoke",
                           "--parallel", parallel, "--out-dir", str(tmp_path / "sweep"), "--results", str(tmp_path / "R.md")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"error: parallel={parallel} is invalid: give 1 to 2, the number of runs in the sweep\n")
    assert not (tmp_path / "sweep").exists()


def journal_rows(out, runs) -> list[dict]:
    """Sweep journal rows for (name, dataset, accuracy) runs, with a metrics log and an evaluation in
    each run's folder under out (dataset None: a row from before rows named their dataset, an MNIST run)."""
    rows = []
    for name, dataset, acc in runs:
        (out / name).mkdir(parents=True)
        (out / name / "metrics.jsonl").write_text("".join(
            json.dumps({"kind": "eval", "step": s, "images_seen": 64 * s, "accuracy": acc * s / 40}) + "\n" for s in (10, 20, 30, 40)))
        (out / name / "evaluation.json").write_text(json.dumps({"dataset": dataset or "mnist"}))
        row = {"run": name, "seed": 0, "threads": 1, "cpu": "CPU", "cpu_flags": [], "minutes": 1.0, "accuracy": acc,
               "own": 8, "n_labels": 10, "purity_mean": 0.9, "purity_worst": 0.5, "slant_spearman": None,
               "fidelity_ratio": 3.0, "steps": 40, "images_per_s": 10.0, "alongside": [name]}
        rows.append(row if dataset is None else {**row, "dataset": dataset})
    return rows


def test_each_dataset_gets_a_table_and_a_figure_of_its_own_and_old_rows_find_theirs(tmp_path):
    """The table writer alone, on journal rows and metrics written here: rows of two datasets in one
    journal (an MNIST row from before rows named their dataset, which its run's evaluation gives)."""
    from infogan.training.sweep import write_results

    out = tmp_path / "sweep"
    rows = journal_rows(out, (("mnist-default-s0-t2", None, 0.9867), ("fashion-mnist-default-s0-t1", "fashion-mnist", 0.61),
                              ("fashion-mnist-default-s1-t1", "fashion-mnist", 0.66)))
    rows[1]["accuracy_live"] = 0.6  # a run that published D-and-Q's moving average gives both
    results = tmp_path / "RESULTS.md"
    write_results(rows, "default", out, results)
    text = results.read_text()
    mnist, fashion = text.split("### MNIST")[1].split("### Fashion-MNIST")
    assert [line.split(" | ")[0] for line in mnist.splitlines() if line.startswith("| mnist-")] == ["| mnist-default-s0-t2"]
    assert "| fashion-" not in mnist and "1 runs: Q accuracy mean 98.67%, worst 98.67%" in mnist and "(results_curves.png)" in mnist
    assert len([line for line in fashion.splitlines() if line.startswith("| fashion-mnist-")]) == 2
    assert "2 runs: Q accuracy mean 63.50%, worst 61.00%" in fashion and "in 0 of 2" in fashion
    assert "(results_curves_fashion-mnist.png)" in fashion
    # two decimals: the targets are a tenth of a point apart, and 98.67% must not read as 98.7%
    assert "| 61.00% (live 60.00%) |" in fashion and "| 66.00% |" in fashion and "| 98.67% |" in mnist
    for png in ("results_curves.png", "results_curves_fashion-mnist.png"):
        Image.open(tmp_path / png).verify()


def test_a_sweep_of_one_dataset_replaces_its_table_and_keeps_the_others_and_the_notes(tmp_path):
    """A digits sweep on a fresh clone must not drop the garments' table that RESULTS.md came with (nor the
    reverse), and a person's notes below the tables stay, their own ### sections included."""
    from infogan.training.sweep import write_results

    results = tmp_path / "RESULTS.md"
    write_results(journal_rows(tmp_path / "first", (("mnist-default-s0-t2", "mnist", 0.91),
                                                    ("fashion-mnist-default-s0-t2", "fashion-mnist", 0.61))),
                  "default", tmp_path / "first", results)
    results.write_text(results.read_text() + "## Notes\n\n### MNIST, by hand\n\nkept.\n")
    before = results.read_text()
    fashion_table = before[before.index("### Fashion-MNIST"):before.index("## Notes")]

    write_results(journal_rows(tmp_path / "second", (("mnist-default-s1-t2", "mnist", 0.95),)), "default",
                  tmp_path / "second", results)
    text = results.read_text()
    tables, notes = text.split("\n## Notes\n")
    assert "| mnist-default-s1-t2 |" in tables and "| mnist-default-s0-t2 |" not in tables  # its own table replaced
    assert "1 runs: Q accuracy mean 95.00%" in tables and "91.00%" not in tables
    assert tables.index("### MNIST") < tables.index("### Fashion-MNIST")  # the datasets' own order
    assert fashion_table.strip() in tables and tables.count("| fashion-mnist-default-s0-t2 |") == 1  # kept as it was
    assert notes == "\n### MNIST, by hand\n\nkept.\n"

    write_results(journal_rows(tmp_path / "third", (("fashion-mnist-default-s2-t2", "fashion-mnist", 0.7),)), "default",
                  tmp_path / "third", results)
    tables = results.read_text().split("\n## Notes\n")[0]
    assert "| mnist-default-s1-t2 |" in tables and "| fashion-mnist-default-s2-t2 |" in tables
    assert "| fashion-mnist-default-s0-t2 |" not in tables and tables.count("### ") == 2


def test_make_sweep_hands_its_seeds_parallel_and_dataset_to_infogan_sweep():
    """The make target a user types (dry run: make prints the command it would run)."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(["make", "-n", "sweep", "SEEDS=0:1 1:1", "PARALLEL=2", "DATASET=fashion-mnist"],
                          cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if "infogan sweep" in ln][-1]
    assert "infogan sweep 0:1 1:1 --parallel 2 " in line and "--dataset fashion-mnist" in line


def test_a_run_trained_on_a_gpu_names_it_not_the_cpus_flags(tmp_path):
    """On a GPU machine the host CPU's bf16 flags say nothing about the run: the row names the GPU and
    the precision it trained in (on an H200 the five seeds were first written as 'amx_bf16' runs)."""
    from infogan.training.sweep import write_results

    out = tmp_path / "sweep"
    rows = journal_rows(out, (("mnist-default-s0-t3", "mnist", 0.98), ("mnist-default-s1-t3", "mnist", 0.97)))
    rows[0].update(cpu="Intel(R) Xeon(R) Processor", cpu_flags=["amx_bf16", "avx512_bf16"], gpu="NVIDIA H200, bf16 autocast")
    rows[1].update(cpu="AMD EPYC", cpu_flags=["avx2"])  # a CPU run: no gpu key, as rows before this change
    write_results(rows, "default", out, tmp_path / "RESULTS.md")
    lines = {line.split(" | ")[0]: line for line in (tmp_path / "RESULTS.md").read_text().splitlines()
             if line.startswith("| mnist-")}
    assert "| Intel(R) Xeon(R) Processor with NVIDIA H200 | GPU, bf16 autocast |" in lines["| mnist-default-s0-t3"]
    assert "| AMD EPYC | no bf16 |" in lines["| mnist-default-s1-t3"]

