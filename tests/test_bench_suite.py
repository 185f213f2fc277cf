"""The benchmark suite's machinery: timing, targets, the table and the JSON files.

No test here asserts a speed: figures depend on the machine. The slow test runs
the generation and Triton sections on a tiny budget against a random-weight
repository made by export's own pipeline, and checks that every figure the
table needs is there.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from infogan.bench import machine, report
from infogan.bench.timing import Timing, interleaved, percentile
from infogan.training.memory import is_glibc


def _timed(batch: int, ips: float) -> dict:
    return {"batch": batch, "calls": 10, "images_per_s": ips, "p50_ms": 1.0, "p99_ms": 2.0}


def fake_results() -> dict:
    """A result dict shaped as run_suite returns it, with made-up figures."""
    per_batch = {
        "api": _timed(256, 950.0), "api_run": _timed(256, 990.0), "raw": _timed(256, 1000.0), "torch": _timed(256, 500.0),
        "api_over_raw": 0.95, "api_run_over_raw": 0.99, "api_over_torch": 1.9, "raw_gflops": 26.0,
        "raw_fraction_of_matmul": 0.5,
    }
    setting = {"batch": 1, "concurrency": 16, "total_batch": 16, "calls": 100, "images_per_s": 700.0, "p50_ms": 3.0,
               "p99_ms": 12.0, "server_inferences": 100, "server_executions": 20, "mean_executed_batch": 5.0,
               "in_process_images_per_s": 1000.0, "fraction_of_in_process": 0.7}
    return {
        "started": "2026-01-01T00:00:00+00:00", "mode": "quick", "machine": machine.machine(), "versions": machine.versions(),
        "git": {"commit": "abc", "dirty": False}, "load_average": {"start": [0.1, 0.1, 0.1], "end": [0.2, 0.1, 0.1]},
        "model": {"source": "test"}, "seconds": {"total": 1.0},
        "sections": {
            "training": {"batch_size": 128, "precision": "bf16", "ours_images_per_s": 2000.0, "naive_images_per_s": 1000.0,
                         "speedup": 2.0, "flops_per_image": 3e8, "matmul_fp32_gflops": 100.0, "matmul_bf16_gflops": 800.0,
                         "ours_fraction_of_fp32_matmul": 0.6, "naive_fraction_of_fp32_matmul": 0.3,
                         "allocator": {"cases": [{"trunk_channels": 64, "threads": 2, "glibc_images_per_s": 400.0,
                                                  "keep_images_per_s": 460.0, "speedup": 1.15}]}},
            "generation": {"batches": [256], "flops_per_image": {"generator": 2.6e7, "encoder": 2.6e7},
                           "providers": ["CPUExecutionProvider"],
                           "matmul_gflops": {"onnxruntime": 100.0, "torch": 90.0, "limit": 100.0},
                           "generator": {"256": per_batch}, "encoder": {"256": per_batch}, "variants": {}, "gpu": None},
            "triton": {"server": {"name": "triton", "version": "2.51.0"}, "model": "infogan_generator", "window_s": 1.0,
                       "settings": {"b1_c16": setting}, "in_process": {"16": _timed(16, 1000.0)}},
            "explore": {"batch": 64, "handler": _timed(64, 1500.0), "round_trip": _timed(64, 700.0)},
        },
    }


def test_interleaved_runs_every_case_in_every_round_after_its_warmup():
    calls = {"a": 0, "b": 0}

    def case(name):
        def fn():
            calls[name] += 1
        return fn

    out = interleaved({"a": case("a"), "b": case("b")}, batch=4, budget_s=0.01, rounds=3, warmup=2, min_calls=5)
    for name in ("a", "b"):
        assert out[name].calls >= 15  # 3 rounds x at least 5 calls
        assert calls[name] == out[name].calls + 2  # the warm-up calls are not timed
        s = out[name].summary()
        assert s["batch"] == 4 and s["p50_ms"] <= s["p99_ms"] and s["images_per_s"] > 0


def test_timings_add_up_across_blocks_and_empty_ones_have_no_percentiles():
    t = Timing(batch=2)
    interleaved({"x": lambda: None}, 2, 0.001, rounds=1, warmup=0, min_calls=3, into={"x": t})
    interleaved({"x": lambda: None}, 2, 0.001, rounds=1, warmup=0, min_calls=3, into={"x": t})
    assert t.calls >= 6
    assert percentile([], 99) is None and Timing(1).images_per_s == 0.0


def test_targets_are_judged_pass_or_miss_and_never_raise():
    assert report.SPEEDUP.check(1.8) is True and report.SPEEDUP.check(1.79) is False
    assert report.TRITON_B1_C16_P99.check(10.0) is True and report.TRITON_B1_C16_P99.check(10.1) is False
    assert report.TRITON_B1_C16_BATCH.check(4.0) is False  # "average batch > 4" is strict
    assert report.SPEEDUP.check(None) is None


def test_a_value_that_rounds_to_its_threshold_shows_the_digit_that_decides():
    assert report.judged_value(0.8953, "%", report.TRITON_B64_C4_FRACTION) == "89.5%"
    assert report.judged_value(0.9049, "%", report.TRITON_B64_C4_FRACTION) == "90.5%"
    assert report.judged_value(0.90, "%", report.TRITON_B64_C4_FRACTION) == "90%"
    assert report.judged_value(0.8712, "%", report.TRITON_B64_C4_FRACTION) == "87%"
    assert report.judged_value(1.0004, " ms", report.TRITON_B1_C1_MEAN) == "1.0004 ms"  # a miss
    assert report.judged_value(1.7996, "x", report.SPEEDUP) == "1.7996x"
    assert report.judged_value(0.5, "%", None) == "50%"


def test_every_target_appears_beside_its_figure():
    rows = [r for r in report.all_rows(fake_results()) if r.target]
    judged = {(r.section.split(",")[0].split(" (")[0], r.figure, r.ok) for r in rows}
    assert ("training", "speedup vs naive", True) in judged
    assert ("training", "FLOP rate / fp32 matmul", False) in judged  # 60% < 80%
    assert ("generator", "api / raw", True) in judged  # 95% at batch 256
    assert ("generator", "api / torch", True) in judged
    assert ("encoder", "26 GFLOP/s / matmul", False) in judged
    triton = {r.figure: r.ok for r in rows if r.section.startswith("triton")}
    assert triton == {"of in-process b=16": True, "p99 latency": False, "mean executed batch": True}


def test_the_table_shows_machine_versions_figures_and_no_gpu():
    buf = io.StringIO()
    report.render(fake_results(), Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    for expected in ("training", "speedup vs naive", "2.00x", "miss", "pass", "no GPU", "b=1 x c=16", "torch"):
        assert expected in text, expected


def test_the_allocator_rows_show_both_modes_and_the_speedup():
    rows = [r for r in report.all_rows(fake_results()) if r.section == "training step, trunk 64 (2 threads)"]
    assert [(r.case, r.images_per_s) for r in rows] == [("glibc allocator defaults", 400.0),
                                                        ("freed memory kept (training)", 460.0)]
    assert rows[1].value == 1.15


@pytest.mark.skipif(not is_glibc(), reason="mallopt is glibc's")
def test_the_allocator_comparison_trains_in_fresh_interpreters_in_both_modes():
    """Real steps of the default recipe in child interpreters (random images): both modes give a rate."""
    import torch

    from infogan.bench import training

    got = training.allocator(quick=True)
    [rates] = got["cases"]
    assert (rates["trunk_channels"], rates["threads"]) == (64, torch.get_num_threads())
    assert rates["glibc_images_per_s"] > 0 and rates["keep_images_per_s"] > 0
    assert rates["speedup"] == pytest.approx(rates["keep_images_per_s"] / rates["glibc_images_per_s"])


def test_a_failed_section_shows_its_error_and_the_others_stay(tmp_path):
    results = fake_results()
    results["sections"]["triton"] = {"error": "RuntimeError: tritonserver exited", "traceback": "..."}
    rows = report.all_rows(results)
    assert any(r.section == "triton" and "exited" in r.figure for r in rows)
    assert any(r.section.startswith("training") for r in rows)
    report.write_json(results, tmp_path)


def test_json_is_written_with_a_timestamp_and_as_latest_with_the_targets(tmp_path):
    path = report.write_json(fake_results(), tmp_path / "bench_results")
    latest = tmp_path / "bench_results" / "latest.json"
    assert path.parent == latest.parent and path.name != "latest.json"
    assert path.read_text() == latest.read_text()
    data = json.loads(latest.read_text())
    assert data["sections"]["training"]["speedup"] == 2.0
    assert {"figure", "value", "target", "pass"} <= set(data["targets"][0])


def test_machine_names_the_cpu_the_versions_and_the_commit():
    m = machine.machine()
    assert m["cpu"] and m["usable_cores"] >= 1 and isinstance(m["gpus"], list)
    assert "onnxruntime" in machine.versions()
    assert set(machine.git_commit()) == {"commit", "dirty"}


def test_the_load_client_is_one_of_the_two_and_the_request_is_real_grpc():
    from tritonclient.grpc import service_pb2

    from infogan.bench.load import LoadRun, infer_request
    from infogan.contract import LatentTemplate

    with pytest.raises(ValueError, match=r"client=curl is invalid: use one of \['h2load', 'asyncio'\]"):
        LoadRun("curl", "127.0.0.1:1", b"", 1, 1.0)
    # the served model's template sets the shapes: here 5 categories, 3 codes, 20 noise dims
    template = LatentTemplate(categorical=(5,), continuous=((-1, 1),) * 3, noise_dim=20)
    request = service_pb2.ModelInferRequest.FromString(infer_request("infogan_generator", template, 3))
    assert request.model_name == "infogan_generator" and [i.shape for i in request.inputs] == [[3, 20], [3, 5], [3, 3]]
    assert [len(b) for b in request.raw_input_contents] == [3 * 20 * 4, 3 * 5 * 4, 3 * 3 * 4]


def test_cli_refuses_an_unknown_section():
    from typer.testing import CliRunner

    from infogan.cli import app

    result = CliRunner().invoke(app, ["bench", "--only", "everything"])
    assert result.exit_code == 2


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generation_triton_and_explore_sections_on_a_tiny_budget(tmp_path, data_dir):
    from infogan.bench import explore, generation, triton
    from infogan.bench.repository import throwaway_repository
    from test_client_support import make_run

    run = make_run(tmp_path / "run")
    with throwaway_repository(run, ("fp32",), data_dir) as prep:
        assert prep.generator.is_file() and prep.source.startswith("run ")
        gen = generation.run(prep, quick=True, budget_s=0.02, batches=(1, 8))
        tri = triton.run(prep, quick=True, window_s=0.3, settings=((1, 1), (1, 4)))
        exp = explore.run(prep, quick=True, budget_s=0.2)
    assert not Path(prep.repository).exists()  # the throwaway repository is gone

    assert 2.0e7 < gen["flops_per_image"]["generator"] < 3.0e7  # the paper's generator: about 26 MFLOP
    for model in ("generator", "encoder"):
        for batch in ("1", "8"):
            f = gen[model][batch]
            assert {"api", "api_run", "raw", "torch"} <= set(f)
            assert f["raw"]["calls"] > 0 and f["api_over_raw"] > 0 and f["raw_fraction_of_matmul"] > 0
    import torch

    assert gen["variants"] == {} and (gen["gpu"] is None) == (not torch.cuda.is_available())

    assert tri["server"]["version"]
    if os.environ.get("CI"):  # make test installs nghttp2-client: the C++ load client is what CI measures with
        assert tri["client"] == "h2load"
    if tri["client"] == "h2load":  # and the Python client beside it, where the check asks for it
        check = tri["client_check"]["b1_c1"]
        assert check["h2load_images_per_s"] > 0 and check["asyncio_images_per_s"] > 0
    for key in ("b1_c1", "b1_c4"):
        s = tri["settings"][key]
        assert s["calls"] > 0 and s["server_executions"] > 0 and s["mean_executed_batch"] >= 1
        assert s["fraction_of_in_process"] > 0

    assert exp["batch"] == 64
    for case in ("handler", "round_trip"):
        assert exp[case]["calls"] >= 3 and exp[case]["p50_ms"] > 0
    assert exp["round_trip"]["p50_ms"] > exp["handler"]["p50_ms"] / 2  # the round trip includes the handler


def test_the_markdown_table_replaces_the_previous_one_between_the_markers(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text(f"# Benchmarks\n\nintro\n\n{report.BEGIN}\nold table\n{report.END}\n\nnotes stay\n")
    report.update_markdown(doc, fake_results())
    report.update_markdown(doc, fake_results())
    text = doc.read_text()
    assert "old table" not in text and text.count(report.BEGIN) == 1
    assert text.startswith("# Benchmarks\n\nintro") and text.rstrip().endswith("notes stay")
    assert "| training (batch 128) | ours (bf16) |" in text and "**miss**" in text


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")  # the torch.onnx exporter's own chatter
def test_upconv_section_times_the_plain_and_the_rewritten_generator_and_reports_them():
    from infogan.bench import upconv
    from infogan.contract import LatentTemplate
    from infogan.training.model import Generator

    template = LatentTemplate()
    r = upconv.compare(Generator(template).eval(), template, batch=4, rounds=1, per_round=1)
    assert r["batch"] == 4 and {"matmul_ms", "plain_ms", "phase_ms"} <= set(r)
    assert all(r[k] > 0 for k in ("matmul_gflops", "plain_gflops", "phase_gflops"))
    rows = report.upconv_rows(r)
    assert [row.case for row in rows] == ["matmul rate", "plain", "phase", "phase vs plain"]
    assert rows[-1].value == pytest.approx(r["plain_ms"] / r["phase_ms"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_short_soak_has_no_failed_or_wrong_answers_and_no_memory_growth(tmp_path):
    """The CI version of `infogan soak` (60 s by default): 16 clients for 10 s."""
    from infogan.bench.soak import soak
    from toy_repository import write_toy_repository

    write_toy_repository(tmp_path)
    r = soak(tmp_path, clients=16, duration_s=10)
    assert r["failed"] == 0, r["first_failures"]
    assert r["wrong"] == 0 and r["clients_finished"] == 16 and r["requests"] > 100
    assert r["rss_growth"] < 0.10, r
