"""A model repository for the client tests, made by export's own pipeline:
the paper's networks with random weights, saved as a training run
(checkpoint.pt + evaluation.json) and published with infogan.export's
export_run, so the client reads exactly what `make export` writes:

    <repo>/<model>/config.pbtxt            (the contract in its parameters)
    <repo>/<model>/<version>/model.onnx    (the contract in its metadata_props)

The other client test modules import make_repository from here. The tests in
this file pin down that the repository carries what the client reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from infogan.contract import (
    ENCODER_MODEL,
    GENERATOR_MODEL,
    META_CATEGORY_PURITY,
    META_CATEGORY_TO_LABEL,
    META_TEMPLATE,
    LatentTemplate,
)

# evaluation found category c drawing digit CATEGORY_TO_DIGIT[c]: a permutation,
# so a test can tell a category from its digit
CATEGORY_TO_DIGIT = [3, 0, 7, 1, 9, 2, 8, 5, 4, 6]
LABEL_NAMES = [str(d) for d in range(10)]
# the judge's purity per category: category 2 (digit 7) is a mix, the rest are clean
CATEGORY_PURITY = [0.99, 0.98, 0.62, 0.97, 0.96, 0.99, 0.95, 0.93, 0.91, 0.97]


def make_run(run_dir: str | Path, seed: int = 0) -> Path:
    """A training run as training leaves it, with random weights."""
    import torch

    from infogan.training.checkpoint import save_checkpoint
    from infogan.training.model import Discriminator, Generator

    run_dir = Path(run_dir)
    template = LatentTemplate()
    torch.manual_seed(seed)
    g, d = Generator(template).eval(), Discriminator(template).eval()
    save_checkpoint(run_dir / "checkpoint.pt", {
        "template": template.to_dict(), "model": {"leaky_slope": 0.1},
        "generator": g.state_dict(), "discriminator": d.state_dict(), "step": 0, "images_seen": 0,
    })
    (run_dir / "evaluation.json").write_text(json.dumps({
        "category_to_label": CATEGORY_TO_DIGIT, "label_names": LABEL_NAMES,
        "generation": {"purity_per_category": CATEGORY_PURITY},
    }))
    return run_dir


def make_repository(root: str | Path, seed: int = 0, versions: int = 1, precisions: tuple[str, ...] = ("fp32",)) -> Path:
    """Export one random-weight run into <root>/repository, `versions` times (versions 1..N)."""
    from infogan.export.pipeline import export_run

    root = Path(root)
    run = make_run(root / "run", seed)
    for _ in range(versions):
        export_run(run, root / "repository", precisions=precisions, keep_versions=versions)
    return root / "repository"


def test_exported_models_carry_the_contract_in_metadata_and_config(tmp_path):
    import onnxruntime as ort

    repo = make_repository(tmp_path)
    for model in (GENERATOR_MODEL, ENCODER_MODEL):
        meta = ort.InferenceSession(str(repo / model / "1" / "model.onnx")).get_modelmeta().custom_metadata_map
        assert LatentTemplate.from_json(meta[META_TEMPLATE]) == LatentTemplate()
        assert json.loads(meta[META_CATEGORY_TO_LABEL]) == CATEGORY_TO_DIGIT
        assert json.loads(meta[META_CATEGORY_PURITY]) == CATEGORY_PURITY
        config = (repo / model / "config.pbtxt").read_text()
        assert META_TEMPLATE in config and META_CATEGORY_PURITY in config and "max_batch_size" in config

