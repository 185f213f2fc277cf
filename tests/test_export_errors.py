"""Bad input to export: one clear InfoganError line each, and nothing published."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from infogan.contract import ENCODER_MODEL, GENERATOR_MODEL, InfoganError
from infogan.export.pipeline import export_run
from test_export_support import make_run, snapshot


@pytest.fixture(scope="module")
def repo(module_tmp):
    """A repository holding one published version, to show that bad input leaves it alone."""
    root = module_tmp("errors")
    repo = root / "model_repository"
    export_run(make_run(root / "good"), repo)
    return repo


def refused(run, repo, match: str, **kwargs) -> str:
    before = snapshot(repo)
    with pytest.raises(InfoganError, match=match) as e:
        export_run(run, repo, **kwargs)
    assert snapshot(repo) == before
    message = str(e.value)
    assert "\n" not in message
    return message


def test_a_missing_run_directory_is_refused(repo, tmp_path):
    message = refused(tmp_path / "no_such_run", repo, "does not exist")
    assert message.startswith("run=")


def test_a_run_without_a_checkpoint_is_refused(repo, tmp_path):
    (tmp_path / "empty_run").mkdir()
    refused(tmp_path / "empty_run", repo, "checkpoint=.*does not exist")


def test_a_truncated_checkpoint_is_refused_as_corrupted(repo, tmp_path):
    run = make_run(tmp_path / "run")
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    refused(run, repo, "corrupted")


def test_a_file_that_is_no_checkpoint_is_refused(repo, tmp_path):
    run = make_run(tmp_path / "run")
    (run / "checkpoint.pt").write_text("not a checkpoint")
    refused(run, repo, "corrupted")


def test_weights_that_do_not_fit_the_checkpoints_template_are_refused(repo, tmp_path):
    run = make_run(tmp_path / "run")
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    ckpt["template"]["noise_dim"] = 20  # the weights were trained with 62 noise variables
    torch.save(ckpt, run / "checkpoint.pt")
    refused(run, repo, "do not fit latent template")


def test_an_incompatible_template_is_refused_against_the_published_one(repo, tmp_path):
    from infogan.contract import LatentTemplate

    run = make_run(tmp_path / "run", LatentTemplate(categorical=(12,)))
    message = refused(run, repo, "--force")
    assert message.startswith("template=")


def test_a_run_without_evaluation_is_refused(repo, tmp_path):
    run = make_run(tmp_path / "run")
    (run / "evaluation.json").unlink()
    refused(run, repo, "evaluate the run first")


def test_an_evaluation_whose_mapping_misses_categories_is_refused(repo, tmp_path):
    run = make_run(tmp_path / "run")
    ev = json.loads((run / "evaluation.json").read_text())
    ev["category_to_label"] = ev["category_to_label"][:9]
    (run / "evaluation.json").write_text(json.dumps(ev))
    refused(run, repo, "category_to_label")


@pytest.mark.parametrize("kwargs, match", [
    ({"precisions": ("fp64",)}, "precision=fp64 is invalid"),
    ({"keep_versions": 0}, "keep_versions=0 is invalid"),
])
def test_invalid_options_are_refused_before_any_work(repo, tmp_path, kwargs, match):
    refused(tmp_path / "never_read", repo, match, **kwargs)


def test_the_cli_prints_one_error_line_and_exits_2(tmp_path):
    repo = tmp_path / "repo"
    proc = subprocess.run(
        [sys.executable, "-m", "infogan.cli", "export", "--run", str(tmp_path / "missing"), "--repository", str(repo)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: run={tmp_path / 'missing'} does not exist: "
                                                "train first (make train) or pass --run runs/<name>"]
    assert not repo.exists()


def test_a_repository_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "repo").write_text("not a folder")
    with pytest.raises(InfoganError, match="repository=.*is a file"):
        export_run(tmp_path / "never_read", tmp_path / "repo")
    assert (tmp_path / "repo").read_text() == "not a folder"


def test_a_precision_given_twice_is_published_once(tmp_path):
    result = export_run(make_run(tmp_path / "run"), tmp_path / "repo", precisions=("fp32", "fp32"))
    assert result.version == 1 and sorted(result.models) == sorted([ENCODER_MODEL, GENERATOR_MODEL])


def test_more_categories_than_labels_export_with_unmatched_ones_marked_minus_1(tmp_path):
    from infogan.contract import META_CATEGORY_TO_LABEL, LatentTemplate
    from infogan.export.pipeline import read_metadata

    mapping = [3, 0, 7, 1, 9, 2, 8, 5, 4, 6, -1, -1]
    run = make_run(tmp_path / "run", LatentTemplate(categorical=(12,)), mapping=mapping)
    version = export_run(run, tmp_path / "repo").version
    meta = read_metadata(tmp_path / "repo" / ENCODER_MODEL / str(version) / "model.onnx")
    assert json.loads(meta[META_CATEGORY_TO_LABEL]) == mapping
