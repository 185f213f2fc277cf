"""fp16 and int8 variants: published as their own models, with their measured quality
change in metadata and config, and the contract's fp32 inputs and outputs."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from infogan.contract import ENCODER_MODEL, GENERATOR_MODEL, IMAGE, META_METRICS, META_PRECISION, LatentTemplate
from infogan.export import parity
from infogan.export.pipeline import export_run, read_metadata
from infogan.export.repository import model_name
from test_export_support import make_run

QUALITY_KEYS = {"argmax_agreement", "category_kept", "category_kept_fp32", "image_max_abs_diff", "samples"}


@pytest.fixture(scope="module")
def variants(module_tmp):
    root = module_tmp("variants")
    repo = root / "repo"
    # a data folder without the test set: quality is measured on generated images only
    result = export_run(make_run(root / "run"), repo, precisions=("fp32", "fp16", "int8"), data_dir=root / "no_data")
    return repo, result


def test_each_precision_is_published_as_its_own_pair_of_models_in_one_version(variants):
    repo, result = variants
    want = {model_name(b, p) for b in (GENERATOR_MODEL, ENCODER_MODEL) for p in ("fp32", "fp16", "int8")}
    assert set(result.models) == want
    assert {p.name for p in repo.iterdir()} == want
    assert all((repo / m / str(result.version) / "model.onnx").is_file() for m in want)
    assert model_name(GENERATOR_MODEL, "fp32") == GENERATOR_MODEL


def test_variants_record_their_quality_change_next_to_fp32(variants):
    repo, result = variants
    for precision in ("fp16", "int8"):
        q = result.quality[precision]
        assert QUALITY_KEYS <= set(q) and "q_accuracy" not in q  # no test set in this run
        assert 0.0 <= q["category_kept"] <= 1.0 and 0.0 <= q["argmax_agreement"] <= 1.0
        for base in (GENERATOR_MODEL, ENCODER_MODEL):
            name = model_name(base, precision)
            meta = read_metadata(repo / name / str(result.version) / "model.onnx")
            assert meta[META_PRECISION] == precision
            assert json.loads(meta[META_METRICS])["quality"] == q
            cfg = text_format.Parse((repo / name / "config.pbtxt").read_text(), mc.ModelConfig())
            assert cfg.name == name and cfg.parameters[META_METRICS].string_value == meta[META_METRICS]
    assert "quality" not in json.loads(read_metadata(repo / GENERATOR_MODEL / "1" / "model.onnx")[META_METRICS])


def test_variants_keep_fp32_inputs_and_outputs_and_change_the_weights(variants):
    repo, result = variants
    for precision, marker in (("fp16", onnx.TensorProto.FLOAT16), ("int8", onnx.TensorProto.INT8)):
        for base in (GENERATOR_MODEL, ENCODER_MODEL):
            model = onnx.load(str(repo / model_name(base, precision) / "1" / "model.onnx"))
            onnx.checker.check_model(model, full_check=True)
            io = list(model.graph.input) + list(model.graph.output)
            assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in io)
            assert any(t.data_type == marker for t in model.graph.initializer)


def test_variants_stay_close_to_fp32_on_the_same_latent(variants):
    repo, result = variants
    feeds = parity.generator_feeds(LatentTemplate(), 16)
    ref = parity.session((repo / GENERATOR_MODEL / "1" / "model.onnx").read_bytes()).run([IMAGE], feeds)[0]
    # int8's error depends on the ranges of the weights and activations it quantizes, so the bound
    # is this random-weight model's own: 0.0021-0.0040 measured over seeds 0-2, with a 5x margin.
    # The trained seed-0 run differs by 0.15 (model_repository/README.md), a bound this test
    # model would meet by a factor of 40, and so could not guard.
    for precision, tol in (("fp16", 1e-2), ("int8", 0.02)):
        path = repo / model_name(GENERATOR_MODEL, precision) / "1" / "model.onnx"
        got = parity.session(path.read_bytes()).run([IMAGE], feeds)[0]
        assert np.abs(got - ref).max() < tol


@pytest.mark.slow
def test_with_the_test_set_on_disk_the_variants_report_q_accuracy(tmp_path, data_dir):
    result = export_run(make_run(tmp_path / "run"), tmp_path / "repo", precisions=("int8",), data_dir=data_dir)
    q = result.quality["int8"]
    assert q["test_images"] == 10000
    assert 0.0 <= q["q_accuracy"] <= 1.0 and 0.0 <= q["q_accuracy_fp32"] <= 1.0
    assert result.models == [model_name(GENERATOR_MODEL, "int8"), model_name(ENCODER_MODEL, "int8")]


def test_a_later_export_of_one_precision_takes_the_next_version_of_the_whole_family(tmp_path):
    run = make_run(tmp_path / "run")
    repo = tmp_path / "repo"
    assert export_run(run, repo).version == 1
    assert export_run(run, repo).version == 2
    # int8 has no version yet, but version 3 is the repository's next export
    assert export_run(run, repo, precisions=("int8",), data_dir=tmp_path / "no_data").version == 3
    assert [p.name for p in (repo / model_name(GENERATOR_MODEL, "int8")).iterdir() if p.name.isdigit()] == ["3"]


def test_the_clients_metadata_reader_reads_every_variant_as_onnx_does(variants):
    """The client reads metadata_props straight from the protobuf (it has no `onnx` package)."""
    from infogan.client.info import onnx_metadata

    repo, result = variants
    for name in result.models:
        path = repo / name / str(result.version) / "model.onnx"
        assert onnx_metadata(path) == read_metadata(path)
