"""A model repository is code for Triton: `infogan serve` serves only what the project
exports and refuses the rest before Triton starts (model_repository/README.md, "Trust").
The refusals are one line naming the model and the field; what a refused model would
have run never runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from infogan.contract import (
    CONFIG_FILE,
    ENCODER_MODEL,
    GENERATOR_MODEL,
    MAX_CATEGORIES,
    MAX_CONTINUOUS_CODES,
    MAX_NOISE_DIM,
    META_TEMPLATE,
    MODEL_FILE,
    InfoganError,
    LatentTemplate,
)
from infogan.serve.batching import model_file, session_settings
from infogan.serve.server import TritonServer, check_repository, free_port
from toy_repository import write_toy_repository

INFOGAN = str(Path(sys.executable).with_name("infogan"))
CORES = len(os.sched_getaffinity(0))


def serve_once(repository: Path) -> tuple[int, str, str]:
    """`infogan serve` on the repository: its exit status, stdout and stderr. A server
    that comes up (it should not) is stopped at once, so the test fails, not hangs."""
    proc = subprocess.Popen(
        [INFOGAN, "serve", "--repository", str(repository), "--grpc-port", str(free_port()),
         "--http-port", str(free_port()), "--metrics-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for line in proc.stdout:  # ends when the command exits, or once it says how to stop it
            if "Ctrl-C" in line:
                proc.send_signal(signal.SIGTERM)
                break
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def start_refused(repository: Path, match: str) -> None:
    """The real server refuses to start; should it start after all, it is stopped."""
    server = TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port())
    try:
        with pytest.raises(InfoganError, match=match) as refused:
            server.start(60)
    finally:
        server.stop()
    assert "\n" not in str(refused.value)


def add_python_model(repository: Path, marker: Path, name: str = "sneaky") -> None:
    """A Triton Python-backend model whose model.py writes `marker` the moment it is imported."""
    (repository / name / "1").mkdir(parents=True)
    (repository / name / CONFIG_FILE).write_text(textwrap.dedent(f'''\
        name: "{name}"
        backend: "python"
        max_batch_size: 8
        input [ {{ name: "x" data_type: TYPE_FP32 dims: [ 1 ] }} ]
        output [ {{ name: "y" data_type: TYPE_FP32 dims: [ 1 ] }} ]
        instance_group [ {{ count: 1 kind: KIND_CPU }} ]
        '''))
    (repository / name / "1" / "model.py").write_text(textwrap.dedent(f'''\
        open({str(marker)!r}, "w").write("ran")

        class TritonPythonModel:
            def execute(self, requests):
                return []
        '''))


def edit_config(repository: Path, model: str, extra: str = "", old: str = "", new: str = "") -> None:
    config = repository / model / CONFIG_FILE
    text = config.read_text()
    if old:
        assert old in text
        text = text.replace(old, new)
    config.write_text(text + extra)


def with_template(repository: Path, model: str, template: dict) -> None:
    """Replace the latent template a config carries (its tensors stay as they are)."""
    config = repository / model / CONFIG_FILE
    text = config.read_text()
    was = re.search(r'key: "infogan.latent_template"\s*value \{\s*string_value: (".*")', text).group(1)
    config.write_text(text.replace(was, json.dumps(json.dumps(template))))


@pytest.fixture()
def repository(tmp_path) -> Path:
    repo = tmp_path / "repo"
    write_toy_repository(repo)
    return repo


# ---------------------------------------------------------------- backend and platform


@pytest.mark.slow
def test_a_python_backend_model_is_refused_in_one_line_and_its_code_never_runs(repository, tmp_path):
    marker = tmp_path / "model_py_ran"
    add_python_model(repository, marker)
    status, out, err = serve_once(repository)
    assert (status, err.strip().splitlines()) == (2, [
        f'error: repository={repository.resolve()} is invalid: model sneaky has backend="python"; '
        "infogan serve runs only its own onnxruntime backend, so move the model out of the repository"]), out
    assert not marker.exists()


@pytest.mark.slow
def test_a_python_model_added_to_a_polling_server_fails_to_load_and_never_runs(repository, tmp_path):
    """A polling server loads what appears after the start-time checks; the server has no
    `python` backend to load it with, and the backend re-checks the model file's place."""
    import tritonclient.grpc as grpcclient

    marker = tmp_path / "model_py_ran"
    with TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(),
                      poll_secs=1) as server:
        add_python_model(repository, marker)
        shutil.copytree(repository / GENERATOR_MODEL, repository / "escaper")
        shutil.copy(repository / GENERATOR_MODEL / "1" / MODEL_FILE, repository / "outside.onnx")
        (repository / "escaper" / "1" / MODEL_FILE).unlink()
        edit_config(repository, "escaper", extra='default_model_filename: "../../outside.onnx"\n',
                    old=f'name: "{GENERATOR_MODEL}"', new='name: "escaper"')
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not marker.exists() and not all(
                f"failed to load '{m}'" in server.logs() for m in ("sneaky", "escaper")):
            time.sleep(0.2)
        log = server.logs()
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            assert client.is_model_ready(GENERATOR_MODEL)
            assert not client.is_model_ready("sneaky") and not client.is_model_ready("escaper")
    assert not marker.exists()
    assert "unable to find backend library for backend 'python'" in log
    assert "default_model_filename=../../outside.onnx is invalid: it must be a plain file name" in log


@pytest.mark.parametrize("field,refusal", [
    ('platform: "pytorch_libtorch"', 'has platform="pytorch_libtorch": use platform "onnxruntime_onnx"'),
    ('backend: "onnxruntime"\nruntime: "libmine.so"', 'has runtime="libmine.so"'),
    ('parameters { key: "EXECUTION_ENV_PATH" value { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }',
     "has parameter EXECUTION_ENV_PATH, which makes Triton load code from a path"),
    ('parameters { key: "TRITON_BATCH_STRATEGY_PATH" value { string_value: "/tmp/batch.so" } }',
     "has parameter TRITON_BATCH_STRATEGY_PATH"),
    ('model_operations { op_library_filename: "libops.so" }', "has model_operations.op_library_filename"),
    ('model_repository_agents { agents { name: "checksum" } }', "has model_repository_agents"),
], ids=["platform", "runtime", "conda environment", "batching library", "custom ops", "repository agent"])
def test_a_config_that_makes_triton_load_other_code_is_refused(repository, field, refusal):
    platform = 'platform: "onnxruntime_onnx"\n'
    edit_config(repository, ENCODER_MODEL, old=platform,
                new=field + "\n" if field.startswith(("platform", "backend")) else platform + field + "\n")
    with pytest.raises(InfoganError, match=re.escape(f"model {ENCODER_MODEL} {refusal}")):
        check_repository(repository)


def test_what_export_writes_passes_every_check(repository):
    (repository / GENERATOR_MODEL / ".staging-x").mkdir()  # a killed export's leftover: Triton skips it
    assert check_repository(repository) == [ENCODER_MODEL, GENERATOR_MODEL]


# ---------------------------------------------------------------- files a config points at


@pytest.mark.slow
@pytest.mark.parametrize("filename", ["../../outside.onnx", "/abs/outside.onnx"], ids=["relative", "absolute"])
def test_a_model_file_named_outside_its_version_folder_is_refused(repository, filename):
    outside = repository / "outside.onnx"  # a valid model, so only the check can refuse it
    if filename.startswith("/"):
        filename = str(repository.parent / "outside.onnx")
        outside = Path(filename)
    shutil.copy(repository / GENERATOR_MODEL / "1" / MODEL_FILE, outside)
    edit_config(repository, GENERATOR_MODEL, extra=f'default_model_filename: "{filename}"\n')
    start_refused(repository, re.escape(f"model {GENERATOR_MODEL} has default_model_filename={filename}, which is "
                                        "invalid: it must be a plain file name inside its folder 1/"))


def symlink_file_out(repository: Path, elsewhere: Path) -> None:
    model = repository / GENERATOR_MODEL / "1" / MODEL_FILE
    shutil.move(model, elsewhere / MODEL_FILE)
    model.symlink_to(elsewhere / MODEL_FILE)


def symlink_version_out(repository: Path, elsewhere: Path) -> None:
    version = repository / GENERATOR_MODEL / "1"
    shutil.move(version, elsewhere / "1")
    version.symlink_to(elsewhere / "1", target_is_directory=True)


def symlink_model_out(repository: Path, elsewhere: Path) -> None:
    model = repository / GENERATOR_MODEL
    shutil.move(model, elsewhere / GENERATOR_MODEL)
    model.symlink_to(elsewhere / GENERATOR_MODEL, target_is_directory=True)


@pytest.mark.slow
@pytest.mark.parametrize("move,refusal", [
    (symlink_file_out, r" has default_model_filename=model\.onnx, which is invalid: 1/model\.onnx resolves to .*/elsewhere/"
                       r"model\.onnx, outside its folder 1/"),
    (symlink_version_out, r": version folder 1 resolves to .*/elsewhere/1, outside "),
    (symlink_model_out, rf": its folder resolves to .*/elsewhere/{GENERATOR_MODEL}, outside "),
], ids=["model file", "version folder", "model folder"])
def test_a_symlink_leading_out_of_the_repository_is_refused(repository, tmp_path, move, refusal):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    move(repository, elsewhere)
    start_refused(repository, f"model {GENERATOR_MODEL}{refusal}")


def test_a_model_file_of_another_name_inside_its_version_folder_passes(repository):
    version = repository / GENERATOR_MODEL / "1"
    (version / MODEL_FILE).rename(version / "weights.onnx")
    edit_config(repository, GENERATOR_MODEL, extra='default_model_filename: "weights.onnx"\n')
    assert model_file(version, "weights.onnx") == version / "weights.onnx"
    assert GENERATOR_MODEL in check_repository(repository)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["1", "."], ids=["version folder", "model folder"])
def test_a_library_beside_the_model_is_refused_before_triton_loads_it(repository, where):
    """Triton looks for libtriton_<backend>.so and batchstrategy.so in a model's folders first."""
    (repository / ENCODER_MODEL / where / "libtriton_onnxruntime.so").write_bytes(b"\x7fELF")
    shown = "1/libtriton_onnxruntime.so" if where == "1" else "libtriton_onnxruntime.so"
    start_refused(repository, re.escape(f"model {ENCODER_MODEL} holds {shown}, which "))


def test_a_warm_up_file_outside_the_warmup_folder_is_refused(repository):
    (repository / ENCODER_MODEL / "warmup").mkdir()
    edit_config(repository, ENCODER_MODEL, old="zero_data: true", new='input_data_file: "../../secret"')
    with pytest.raises(InfoganError, match=re.escape(f"model {ENCODER_MODEL} has model_warmup zeros_batch_1 input "
                                                     "image: input_data_file=../../secret, which is invalid")):
        check_repository(repository)


# ---------------------------------------------------------------- thread counts


@pytest.mark.parametrize("threads", [str(CORES + 1), "4096", "9" * 5000])
def test_more_intra_op_threads_than_cores_are_refused(threads):
    config = {"parameters": {"intra_op_thread_count": {"string_value": threads}}}
    with pytest.raises(ValueError, match=rf"^parameter intra_op_thread_count=\d{{1,20}} is invalid: use 1\.\.{CORES} threads"):
        session_settings(config, "CPU", CORES)


def test_thread_counts_within_the_cores_are_kept_and_0_is_the_default():
    counts = {t: session_settings({"parameters": {"intra_op_thread_count": {"string_value": t}}}, "CPU", 4).intra_op_threads
              for t in ("1", "4", "0", "0004")}
    assert counts == {"1": 1, "4": 4, "0": 4, "0004": 4}


@pytest.mark.slow
def test_the_served_backend_refuses_more_threads_than_cores(repository):
    edit_config(repository, GENERATOR_MODEL,
                extra=f'parameters {{ key: "intra_op_thread_count" value {{ string_value: "{CORES + 1}" }} }}\n')
    start_refused(repository, rf"Triton failed to load {GENERATOR_MODEL} version 1: .*parameter intra_op_thread_count="
                              rf"{CORES + 1} is invalid: use 1\.\.{CORES} threads")


# ---------------------------------------------------------------- latent template bounds

ABSURD = {
    "noise": ({"categorical": [10], "noise_dim": 10**9}, f"noise_dim=1000000000 is invalid: must be >= 1 and <= {MAX_NOISE_DIM}"),
    "categories": ({"categorical": [10**6], "noise_dim": 62}, f"at most {MAX_CATEGORIES} categories"),
    "codes": ({"categorical": [10], "noise_dim": 62, "continuous": [[-1, 1]] * 1000},
              f"it has 1000 codes, at most {MAX_CONTINUOUS_CODES} are allowed"),
    "range": ({"categorical": [10], "noise_dim": 62, "continuous": [[-1, 1e300]]}, "continuous[0]=(-1.0, 1e+300) is invalid"),
    "infinite range": ({"categorical": [10], "noise_dim": 62, "continuous": [[-1, 1e400]]}, "continuous[0]=(-1.0, inf) is invalid"),
    "noise scale": ({"categorical": [10], "noise_dim": 62, "noise_scale": 1e30}, "noise_scale=1e+30 is invalid"),
    "wrong types": ({"categorical": "many", "noise_dim": 62}, "latent template is malformed: invalid literal"),
}


@pytest.mark.parametrize("template,refusal", ABSURD.values(), ids=ABSURD.keys())
def test_a_template_beyond_the_bounds_is_refused_in_one_line(template, refusal):
    with pytest.raises(InfoganError, match=re.escape(refusal)) as refused:
        LatentTemplate.from_json(json.dumps(template))
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


def test_the_largest_template_within_the_bounds_is_accepted():
    big = LatentTemplate(categorical=(MAX_CATEGORIES,), continuous=((-1e6, 1e6),) * MAX_CONTINUOUS_CODES,
                         noise_dim=MAX_NOISE_DIM, noise_scale=1e6)
    assert LatentTemplate.from_json(big.to_json()) == big


def test_a_served_config_with_an_absurd_template_is_refused_in_one_line(repository):
    with_template(repository, GENERATOR_MODEL, ABSURD["noise"][0])
    status, out, err = serve_once(repository)
    assert (status, err.strip().splitlines()) == (2, [
        f"error: repository={repository.resolve()} is invalid: model {GENERATOR_MODEL} has parameter {META_TEMPLATE} "
        f"that the contract refuses: {ABSURD['noise'][1]}"]), out


@pytest.mark.slow
def test_the_client_refuses_an_absurd_template_from_a_served_config_in_one_line(repository, tmp_path):
    """A polling server serves a config rewritten after start unchecked: the client checks too."""
    import tritonclient.grpc as grpcclient

    with TritonServer(repository, grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(),
                      poll_secs=1) as server:
        with_template(repository, GENERATOR_MODEL, ABSURD["categories"][0])
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "1000000" not in client.get_model_config(
                    GENERATOR_MODEL, as_json=True)["config"]["parameters"][META_TEMPLATE]["string_value"]:
                time.sleep(0.2)
        done = subprocess.run([INFOGAN, "generate", "--url", server.grpc_url, "--out", str(tmp_path / "x.png")],
                              capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr.strip().splitlines()) == (
        2, [f"error: categorical=[1000000] is invalid: the categorical code may have at most {MAX_CATEGORIES} categories"])
    assert not (tmp_path / "x.png").exists()
