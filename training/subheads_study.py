"""What IIC's sub-heads learned (`--subheads H` runs): each head's clustering of the run's evaluation
images next to Q's own head, and which one IIC's label-free rule would pick.

For each run: D-and-Q as export publishes them (batch norm measured on real images; at a checkpoint
before the run's end, the live D-and-Q with batch norm measured on the first 5,000 training images, as
evaluation scores the live encoder), every head's
category for each evaluation image (Q's categorical head first, then the sub-heads), and per head
  - the information between its categories of the images and of their small affine transforms (nats,
    at most ln K): label-free, IIC's own criterion; the head with the most is the one IIC would keep;
  - its accuracy under the one-to-one assignment evaluation uses (labels read here only, as there).
A sub-head is not tied to G's codes: publishing one would also need its categories matched to G's, so
the table bounds what a label-free head choice could give, it does not export anything.

    python -m infogan.training.subheads_study runs/ho/sub5-s0 runs/ho/sub5-s1
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from infogan.training.augment import random_affine
from infogan.training.data import dataset_spec
from infogan.training.evaluate import cluster_accuracy
from infogan.training.images import EVAL_BATCH
from infogan.training.losses import paired_information
from infogan.training.model import Discriminator
from infogan.training.runs import published_models, study_command


@torch.no_grad()
def head_logits(d: Discriminator, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """N x heads x K: Q's categorical logits, then each sub-head's, in eval mode."""
    d.eval()
    k, out = d.q_head.template.categorical_dim, []
    for i in range(0, len(images), batch_size):
        hidden = d.q_head.hidden(d.trunk(images[i:i + batch_size]))
        heads = [d.q_head.categorical(hidden)[:, None]]
        if d.q_head.subheads is not None:
            heads.append(d.q_head.subheads(hidden).view(len(hidden), -1, k))
        out.append(torch.cat(heads, 1))
    return torch.cat(out)


def study(run: Path, seed: int = 0) -> list[dict]:
    """One row per head of the run's published encoder (Q's own first)."""
    cfg, _, d, images, labels = published_models(run)
    logits = head_logits(d, images)
    moved = head_logits(d, random_affine(images, torch.Generator().manual_seed(seed)))
    n_labels = len(dataset_spec(cfg.dataset).label_names)
    rows = []
    for h in range(logits.shape[1]):
        pred = logits[:, h].argmax(1).numpy()
        scored = cluster_accuracy(pred, labels, logits.shape[2], n_labels)
        rows.append({"run": run.name, "head": "Q" if h == 0 else f"sub {h}",
                     "information": float(paired_information(logits[:, h], moved[:, h])),
                     "accuracy": scored["accuracy"], "classes": scored["labels_with_own_category"], "labels": n_labels,
                     "agrees_with_q": float(np.mean(pred == logits[:, 0].argmax(1).numpy()))})
    best = max(range(len(rows)), key=lambda i: rows[i]["information"])
    rows[best]["picked"] = True
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| run | head | information (nats) | IIC's pick | accuracy | classes with own category |",
             "|---|---|--:|:-:|--:|--:|"]
    lines += [f"| {r['run']} | {r['head']} | {r['information']:.4f} | {'yes' if r.get('picked') else ''} | "
              f"{100 * r['accuracy']:.2f}% | {r['classes']}/{r['labels']} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    study_command(__doc__.splitlines()[0], study, table, "run folders trained with --subheads", argv)


if __name__ == "__main__":
    main()
