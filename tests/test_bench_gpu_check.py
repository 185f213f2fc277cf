"""`infogan gpu-check`: its steps on the CPU (this machine has no GPU), its table between
BENCHMARKS.md's markers, the Triton configs pinned through export's config writer, and
one line where there is no GPU. Nothing here runs CUDA: the CUDA graph case and the
CUDA provider are exercised only where a GPU is (the check itself, `make gpu-check`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from infogan.cli import app
from infogan.contract import CONFIG_FILE, GENERATOR_MODEL, InfoganError
from infogan.machine import cpu_count

MARKED = "# Benchmarks\n\nintro\n\n<!-- gpu-check:begin -->\nold text\n<!-- gpu-check:end -->\n\n## Latest table\nkept\n"


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # this machine's truth, made explicit
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(MARKED)
    result = CliRunner().invoke(app, ["gpu-check", "--markdown", str(md), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"no CUDA GPU here (torch {torch.__version__}: torch.cuda.is_available() is False); nothing to check"]
    assert md.read_text() == MARKED and not (tmp_path / "r.json").exists()


def test_the_table_replaces_only_the_text_between_the_markers(tmp_path):
    from infogan.bench.gpu_report import update_markdown

    md = tmp_path / "BENCHMARKS.md"
    md.write_text(MARKED)
    update_markdown(md, "| what | figure |\n|---|---|\n")
    assert md.read_text() == MARKED.replace("old text\n", "| what | figure |\n|---|---|\n")
    plain = tmp_path / "plain.md"
    plain.write_text("# no markers\n")
    with pytest.raises(InfoganError, match=r"^markdown=.*plain.md is invalid: it has no <!-- gpu-check:begin -->"):
        update_markdown(plain, "x")
    assert plain.read_text() == "# no markers\n"


def test_a_file_without_markers_is_refused_before_anything_runs(tmp_path):
    plain = tmp_path / "plain.md"
    plain.write_text("# no markers\n")
    result = CliRunner().invoke(app, ["gpu-check", "--cpu", "--markdown", str(plain)])
    assert isinstance(result.exception, InfoganError) and "has no <!-- gpu-check:begin -->" in str(result.exception)
    assert "training" not in result.output


def test_instances_are_pinned_through_exports_config_writer(tmp_path):
    from tritonclient.grpc import model_config_pb2 as mc
    from test_client_support import make_repository

    from infogan.bench.gpu_check import set_instance_kind
    from infogan.export.repository import read_config

    repo = make_repository(tmp_path, precisions=("fp32", "fp16"))
    before = {p: p.read_text() for p in repo.glob(f"*/{CONFIG_FILE}")}
    assert len(before) == 4 and all("kind: KIND_AUTO" in t for t in before.values())
    set_instance_kind(repo, "KIND_GPU")
    for path, text in before.items():  # export's own config, the instance kind aside
        assert path.read_text() == text.replace("kind: KIND_AUTO", "kind: KIND_GPU")
        assert [g.kind for g in read_config(path).instance_group] == [mc.ModelInstanceGroup.KIND_GPU]
    # a config that model_config's arguments cannot rebuild is not silently rewritten
    path = repo / GENERATOR_MODEL / CONFIG_FILE
    path.write_text(path.read_text().replace("max_batch_size: 1024", "max_batch_size: 7"))
    with pytest.raises(RuntimeError, match="differs from model_config's rebuild"):
        set_instance_kind(repo, "KIND_CPU")
    assert "max_batch_size: 7" in path.read_text() and "KIND_GPU" in path.read_text()


def test_the_raw_case_with_io_binding_computes_what_session_run_computes(tmp_path):
    from test_client_support import make_repository

    from infogan.bench.generation import latent_feeds
    from infogan.bench.gpu_inference import BoundRun
    from infogan.client import Generator
    from infogan.client.onnx_backend import newest_version
    from infogan.sessions import open_session

    repo = make_repository(tmp_path)
    session = open_session(newest_version(repo, GENERATOR_MODEL), gpu=False)
    with Generator.from_repository(repo) as g:
        feeds = latent_feeds(g.template, 5)
    bound = BoundRun(session, feeds)
    bound()
    np.testing.assert_array_equal(bound.binding.copy_outputs_to_cpu()[0], session.run(None, feeds)[0])


@pytest.mark.slow
@pytest.mark.full
def test_every_step_runs_on_cpu_providers_and_the_table_lands_between_the_markers(tmp_path, data_dir):
    """The check's own logic end to end on the CPU (a stand-in for the GPU, which this machine
    lacks): training, export of three precisions, provider parity, the in-process cases, Triton
    with KIND_CPU instances; then its table in BENCHMARKS.md and every figure in the JSON."""
    md, out = tmp_path / "BENCHMARKS.md", tmp_path / "gpu_check.json"
    md.write_text(MARKED)
    result = CliRunner().invoke(app, ["gpu-check", "--cpu", "--steps", "20", "--data-dir", str(data_dir),
                                      "--out", str(out), "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    r = json.loads(out.read_text())
    assert not r["gpu"] and r["training"]["updates"] == 20 and r["training"]["images_per_s"] > 0
    threads = r["training_threads"]  # every core's threads, then one, each for the same short run
    assert threads["updates"] == 20 and list(threads["images_per_s"]) == list(dict.fromkeys([str(cpu_count()), "1"]))
    assert all(x > 0 for x in threads["images_per_s"].values())
    assert r["export"]["precisions"] == ["fp32", "fp16", "int8"]
    assert r["parity"]["ok"] and r["parity"]["generator_max_abs_diff"] == 0.0  # the CPU provider against itself
    gen = r["generation"]
    assert set(gen["batches"]) == {"1", "8"} and gen["torch_graph_note"].startswith("skipped: CUDA graphs")
    for row in gen["batches"].values():
        assert set(row) >= {"api", "api_run", "raw", "torch_eager"} and "torch_graph" not in row
        assert row["api"]["calls"] >= 1 and row["api_over_raw"] > 0
    assert r["triton"]["kind"] == "KIND_CPU" and set(r["triton"]["settings"]) == {"b8_c2", "b1_c2"}
    answer = r["triton"]["answer"]  # the CPU provider on both sides
    assert answer["batch"] == 8 and answer["max_abs_diff"] <= 1e-6 and answer["ok"]
    for s in r["triton"]["settings"].values():
        assert s["calls"] > 0 and s["server_executions"] > 0 and s["in_process"]["images_per_s"] > 0
        assert s["server_inferences"] >= s["server_executions"] and s["server_ms"]["compute_infer"] > 0
    served = r["backend_session"]  # the instance's own session, timed apart from Triton, at the batches it met
    assert served["kind"] == "KIND_CPU" and list(served["arms"]) == ["served"]  # HEURISTIC is a CUDA option
    arm = served["arms"]["served"]
    assert arm["file"] == "model.onnx" and arm["providers"] == ["CPUExecutionProvider"]
    assert list(arm["batches"]) == ["1", "2", "8", "16"]  # each request's batch and the clients' together
    assert all(b["first_ms"] > 0 and b["p50_ms"] > 0 for b in arm["batches"].values())
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n<!-- gpu-check:begin -->\n**GPU check**")
    assert text.endswith("<!-- gpu-check:end -->\n\n## Latest table\nkept\n") and "old text" not in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0] == "| what | figure | target | result |"
    assert any(line.startswith("| generation in process, batch 8 | client API ") for line in table)
    assert any(line.startswith("| training: the first 20 updates by intra-op threads, one after the other | ")
               and " 1 thread " in line for line in table)
    assert any(line.startswith("| Triton (KIND_CPU), batch 1 x 2 clients |") for line in table)
    assert any(line.startswith("| a served instance's session (KIND_CPU, model.onnx) in process, cuDNN search as served: "
                               "first call / then (p50) | batch 1: ") for line in table)
    assert f"Triton {r['versions']['triton']}" in text and f"torch {r['versions']['torch']}" in text


def test_a_failed_step_skips_only_the_steps_that_need_it_and_each_step_is_saved():
    """run_steps: export failing leaves training's figures, skips what needs the export, logs the
    traceback, and saves the result after every step (a check killed at its limit keeps them)."""
    from infogan.bench.gpu_check import run_steps

    ran, saved, logged = [], [], []

    def step(name, fail=False):
        def run():
            ran.append(name)
            if fail:
                raise RuntimeError(f"{name} broke\nsecond line")
            return {"name": name}
        return run

    result = {"seconds": {}}
    run_steps(result, {"training": step("training"), "training_threads": step("training_threads"),
                       "export": step("export", fail=True), "parity": step("parity"),
                       "generation": step("generation"), "triton": step("triton"),
                       "backend_session": step("backend_session")}, logged.append,
              lambda r: saved.append(sorted(k for k in r["seconds"])))
    assert ran == ["training", "training_threads", "export"]
    assert result["training"] == {"name": "training"} and "export" not in result
    assert result["failed"] == {"export": "RuntimeError: export broke"}
    assert result["not_run"] == {name: "export did not complete"
                                 for name in ("parity", "generation", "triton", "backend_session")}
    assert saved == [["training"], ["training", "training_threads"], ["export", "training", "training_threads"]]
    assert any("Traceback" in line and "export broke" in line for line in logged)

    result = {"seconds": {}}  # a later step's failure does not stop its siblings
    run_steps(result, {"training": step("training"), "training_threads": step("training_threads"),
                       "export": step("export"), "parity": step("parity", fail=True),
                       "generation": step("generation"), "triton": step("triton"),
                       "backend_session": step("backend_session")}, logged.append)
    assert ran[3:] == ["training", "training_threads", "export", "parity", "generation", "triton", "backend_session"]
    assert set(result["failed"]) == {"parity"} and result["not_run"] == {} and result["triton"] == {"name": "triton"}


def test_a_failed_step_is_a_row_the_json_keeps_what_ran_and_the_command_exits_non_zero(monkeypatch, tmp_path):
    """Through the command: the training step is made to fail (a test double: this machine's real
    failure modes are on a GPU); its row says so, the steps after it say why they did not run,
    the JSON and the markdown are still written, and the command ends with one error line."""
    import infogan.bench.gpu_check as gpu_check

    def no_training(*_):
        raise InfoganError("data_dir=/nowhere is invalid: no MNIST there")

    monkeypatch.setattr(gpu_check, "train_recipe", no_training)
    md, out = tmp_path / "BENCHMARKS.md", tmp_path / "gpu_check.json"
    md.write_text(MARKED)
    result = CliRunner().invoke(app, ["gpu-check", "--cpu", "--out", str(out), "--markdown", str(md)])
    assert result.exit_code == 1 and isinstance(result.exception, InfoganError)  # `infogan` prints it as one line, exit 2
    assert str(result.exception) == ("gpu-check failed at training: InfoganError: data_dir=/nowhere is invalid: "
                                     "no MNIST there; the table shows the steps that ran")
    r = json.loads(out.read_text())
    assert r["failed"] == {"training": "InfoganError: data_dir=/nowhere is invalid: no MNIST there"}
    assert set(r["not_run"]) == {"training_threads", "export", "parity", "generation", "triton", "backend_session"}
    assert r["seconds"]["total"] > 0
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    assert rows[1] == "| training: FAILED | InfoganError: data_dir=/nowhere is invalid: no MNIST there |  |  |"
    assert rows[2] == "| training_threads: not run | training did not complete |  |  |" and len(rows) == 8


def test_a_wrong_served_answer_is_a_row_and_fails_the_command_after_every_figure(monkeypatch):
    """The table and the command on a result whose Triton answered empty images (what an earlier CPU
    try saw under numpy 2): the row says so, the load rows stay, and the command ends in one line."""
    import infogan.bench.gpu_check as gpu_check
    from infogan.bench.gpu_report import table

    partial = {"gpu": True, "seconds": {"total": 1.0}, "failed": {}, "not_run": {},
               "versions": {"device": "GPU", "torch": "t", "onnx": "o", "onnxruntime": "r", "python": "p"},
               "parity": {"generator_max_abs_diff": 0.0, "encoder_max_abs_diff": 0.0, "providers": ["CUDAExecutionProvider"], "ok": True},
               "triton": {"kind": "KIND_GPU", "settings": {}, "answer": {
                   "batch": 8, "max_abs_diff": None, "ok": False, "error": "Triton answered images of shape (0,) for (8, 1, 28, 28)"}}}
    assert "| Triton (KIND_GPU): one request of 8 over gRPC against the CPU provider | Triton answered images of shape (0,)" \
        in table(partial)
    monkeypatch.setattr(gpu_check, "check", lambda *a, **k: partial)  # the check's result stands in for a GPU run
    result = CliRunner().invoke(app, ["gpu-check"])
    assert isinstance(result.exception, InfoganError), result.output
    assert str(result.exception) == ("triton=Triton answered images of shape (0,) for (8, 1, 28, 28) is wrong: a served "
                                     "request must answer the CPU provider's images within 0.001")
