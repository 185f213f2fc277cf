"""Runs to export for the export tests: the paper's networks with random weights and
random batch-norm statistics (so folding them is really exercised), saved as
training saves them, with an evaluation.json beside the checkpoint.

The other export test modules import make_run and snapshot from here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from infogan.contract import LatentTemplate

# a permutation, so a test can tell a category from its digit
CATEGORY_TO_DIGIT = [3, 0, 7, 1, 9, 2, 8, 5, 4, 6]
LABEL_NAMES = [str(d) for d in range(10)]
ACCURACY = 0.8125


def make_run(root: str | Path, template: LatentTemplate = LatentTemplate(), seed: int = 0,
             mapping: list[int] | None = None) -> Path:
    from infogan.training.checkpoint import save_checkpoint
    from infogan.training.model import Discriminator, Generator

    run = Path(root)
    torch.manual_seed(seed)
    g, d = Generator(template), Discriminator(template)
    for m in list(g.modules()) + list(d.modules()):
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
    save_checkpoint(run / "checkpoint.pt", {
        "template": template.to_dict(), "model": {"leaky_slope": 0.1},
        "generator": g.state_dict(), "discriminator": d.state_dict(),
        "step": 7, "images_seen": 896, "config": {}, "evaluation": None,
    })
    k = template.categorical[0]
    mapping = mapping if mapping is not None else (CATEGORY_TO_DIGIT if k == 10 else [i % 10 for i in range(k)])
    (run / "evaluation.json").write_text(json.dumps({
        "accuracy": ACCURACY, "category_to_label": mapping, "label_names": LABEL_NAMES,
        "confusion": [[0] * 10 for _ in range(k)], "dataset": "mnist", "images_seen": 896, "step": 7,
    }))
    return run


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for folders): equal snapshots, identical trees."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}
