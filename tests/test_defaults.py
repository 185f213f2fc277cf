"""One home for each default: every command's shared options (--repository, --data-dir,
--runs-dir, --url, --timeout, --backend, --device) take their environment variable and
default from infogan.defaults, so changing a default there changes it for every command."""

from __future__ import annotations

from pathlib import Path

import typer

from infogan import defaults
from infogan.cli import app

ENV_OF_FLAG = {
    "--repository": defaults.ENV_REPOSITORY,
    "--data-dir": defaults.ENV_DATA_DIR,
    "--runs-dir": defaults.ENV_RUNS_DIR,
    "--url": defaults.ENV_URL,
    "--timeout": defaults.ENV_TIMEOUT,
    "--backend": defaults.ENV_BACKEND,
    "--device": defaults.ENV_DEVICE,
}
# export's --data-dir means "the run's own data folder" unless given, so no environment
# variable may replace it
OWN_MEANING = {("export", "--data-dir")}
DEFAULT_OF_FLAG = {"--repository": Path(defaults.REPOSITORY), "--data-dir": Path(defaults.DATA_DIR),
                   "--runs-dir": Path(defaults.RUNS_DIR)}


def shared_options() -> list[tuple[str, str, object]]:
    """(command, flag, click parameter) of every shared option of every command."""
    group = typer.main.get_command(app)
    out = []
    for name, command in group.commands.items():
        for param in command.params:
            flags = [f for f in getattr(param, "opts", []) if f in ENV_OF_FLAG]
            out += [(name, f, param) for f in flags if (name, f) not in OWN_MEANING]
    return out


def test_every_shared_option_reads_the_environment_variable_named_in_defaults():
    options = shared_options()
    assert {f for _, f, _ in options} == set(ENV_OF_FLAG)  # each kind is used somewhere
    wrong = [(c, f, p.envvar) for c, f, p in options if p.envvar != ENV_OF_FLAG[f]]
    assert wrong == []


def test_every_path_option_defaults_to_the_path_in_defaults():
    wrong = [(c, f, p.default) for c, f, p in options_with_defaults() if Path(p.default) != DEFAULT_OF_FLAG[f]]
    assert wrong == []


def options_with_defaults():
    return [(c, f, p) for c, f, p in shared_options() if f in DEFAULT_OF_FLAG]


def test_the_client_and_the_server_agree_on_where_triton_listens():
    from infogan.client.info import DEFAULT_URL
    from infogan.serve.server import TritonServer

    server = TritonServer(defaults.REPOSITORY)
    assert DEFAULT_URL == f"{server.host}:{server.ports['grpc_port']}"


BACKEND_FLAGS = ("--backend", "--device", "--url", "--repository", "--timeout", "--model")


def test_the_client_commands_share_one_definition_of_each_backend_option():
    group = typer.main.get_command(app)

    def backend_options(name):
        params = {p.opts[0]: p for p in group.commands[name].params if p.opts[0] in BACKEND_FLAGS}
        return {f: (p.opts, p.envvar, p.default, p.help) for f, p in params.items()}

    generate = backend_options("generate")
    assert set(generate) == set(BACKEND_FLAGS)
    assert backend_options("traverse") == generate and backend_options("encode") == generate


def test_the_device_and_the_explorer_port_have_one_default():
    import inspect

    from infogan.client import Encoder, Generator
    from infogan.client.onnx_backend import OnnxBackend
    from infogan.sessions import resolve_device

    group = typer.main.get_command(app)

    def default(command, flag):
        return next(p.default for p in group.commands[command].params if flag in p.opts)

    apis = (Generator.from_repository, Generator.from_onnx, Encoder.from_repository, OnnxBackend, resolve_device)
    assert {inspect.signature(f).parameters["device"].default for f in apis} == {defaults.DEVICE}
    assert default("generate", "--device") == defaults.DEVICE
    assert default("explore", "--port") == defaults.EXPLORE_PORT


def test_the_dataset_has_one_default_for_the_commands_the_config_the_studies_and_make(monkeypatch, tmp_path):
    import shutil
    import subprocess
    import sys

    from infogan.training.config import TrainConfig, resolve
    from infogan.training.held_out_study import main

    group = typer.main.get_command(app)
    with_dataset = {name: p.default for name, c in group.commands.items() for p in c.params if "--dataset" in p.opts}
    assert {"data", "train", "sweep"} <= set(with_dataset)
    assert set(with_dataset.values()) == {defaults.DATASET}
    assert TrainConfig().dataset == defaults.DATASET == resolve("default").dataset
    got = []
    monkeypatch.setattr(sys, "argv", ["study", "--out", str(tmp_path / "s.json"), "--threads", "1"])
    main("A study.", [0.99], lambda *args: got.append(args), table=lambda paths: "")
    assert got[0][-1] == defaults.DATASET
    if shutil.which("make"):  # make names no dataset unless told, so infogan's default is the only one
        root = Path(__file__).resolve().parents[1]
        plain = subprocess.run(["make", "-n", "train"], cwd=root, capture_output=True, text=True, timeout=60).stdout
        told = subprocess.run(["make", "-n", "train", "DATASET=fashion-mnist"], cwd=root, capture_output=True, text=True,
                              timeout=60).stdout
        assert "infogan train " in plain and "--dataset" not in plain
        assert "train --dataset fashion-mnist " in told and "data --dataset fashion-mnist" in told


def test_the_preset_and_the_seed_have_one_default_for_the_commands_the_config_the_studies_and_make(monkeypatch, tmp_path):
    import shutil
    import subprocess
    import sys

    from infogan.training.config import PRESETS, TrainConfig, resolve
    from infogan.training.held_out_study import main

    assert defaults.PRESET in PRESETS
    group = typer.main.get_command(app)
    presets = {name: p.default for name, c in group.commands.items() for p in c.params if "--preset" in p.opts}
    # the client's --seed draws latents to generate, not a training run: it is not this default
    train_seed = next(p.default for p in group.commands["train"].params if "--seed" in p.opts)
    assert {"train", "sweep"} <= set(presets)
    assert set(presets.values()) == {defaults.PRESET} and train_seed == defaults.SEED
    assert TrainConfig().preset == defaults.PRESET == resolve().preset
    assert TrainConfig().seed == defaults.SEED == resolve().seed
    got = []
    monkeypatch.setattr(sys, "argv", ["study", "--out", str(tmp_path / "s.json"), "--threads", "1"])
    main("A study.", [0.99], lambda *args: got.append(args), table=lambda paths: "")
    assert got[0][:2] == (defaults.PRESET, defaults.SEED)
    if shutil.which("make"):  # make names no preset or seed unless told, so infogan's defaults are the only ones
        root = Path(__file__).resolve().parents[1]

        def dry(*args: str) -> str:
            return subprocess.run(["make", "-n", *args], cwd=root, capture_output=True, text=True, timeout=60).stdout

        plain, told = dry("train"), dry("train", "PRESET=paper", "SEED=3")
        assert "infogan train " in plain and "--preset" not in plain and "--seed" not in plain
        assert "--preset paper --seed 3" in told
        assert "--preset" not in dry("sweep") and "--preset smoke" in dry("sweep", "PRESET=smoke")


def test_ds_architecture_has_one_default_for_the_modules_the_config_and_an_older_checkpoint():
    # a checkpoint from before a setting existed is rebuilt as a run without it would have trained
    import inspect

    from infogan.training.checkpoint import architecture
    from infogan.training.config import TrainConfig
    from infogan.training.model import Discriminator, QHead, Trunk

    cfg = TrainConfig()
    expected = cfg.architecture()
    assert set(expected) == {"leaky_slope", "overcluster", "subheads", "trunk_channels", "trunk_convolutions"}
    assert architecture({}) == expected
    for module in (Discriminator, QHead, Trunk):
        given = inspect.signature(module).parameters
        assert {k: given[k].default for k in expected if k in given} == {k: v for k, v in expected.items() if k in given}


def test_the_traversal_sweep_has_one_default_for_the_client_command_and_its_function():
    # the explorer's strip is held to TRAVERSAL_STEPS columns in tests/test_explore.py
    import inspect

    from infogan.client.commands import traverse, traverse_images
    from infogan.contract import TRAVERSAL_RANGE, TRAVERSAL_STEPS

    for f in (traverse, traverse_images):
        given = inspect.signature(f).parameters
        assert (given["low"].default, given["high"].default, given["steps"].default) == (*TRAVERSAL_RANGE, TRAVERSAL_STEPS)


def test_the_sweeps_parallel_and_the_soaks_load_have_one_default_for_the_command_the_function_and_make():
    import inspect
    import shutil
    import subprocess

    from infogan.bench.commands import soak as soak_command
    from infogan.training.sweep import parse_runs, sweep

    from infogan.bench.soak import soak as soak_function  # the command imports it only when it runs

    given, taken = inspect.signature(soak_command).parameters, inspect.signature(soak_function).parameters
    assert (given["clients"].default, given["duration"].default) == (defaults.SOAK_CLIENTS, defaults.SOAK_SECONDS)
    assert (taken["clients"].default, taken["duration_s"].default) == (defaults.SOAK_CLIENTS, defaults.SOAK_SECONDS)
    sweep_parallel = next(p.default for p in typer.main.get_command(app).commands["sweep"].params if "--parallel" in p.opts)
    assert sweep_parallel == inspect.signature(sweep).parameters["parallel"].default == \
        inspect.signature(parse_runs).parameters["parallel"].default
    if shutil.which("make"):  # make passes --parallel only when told, so the command's default is the only one
        root = Path(__file__).resolve().parents[1]

        def dry(*args: str) -> str:
            return subprocess.run(["make", "-n", *args], cwd=root, capture_output=True, text=True, timeout=60).stdout

        assert "infogan sweep " in dry("sweep") and "--parallel" not in dry("sweep")
        assert "--parallel 2" in dry("sweep", "PARALLEL=2")
