"""Training pictures: sample grids in the paper's layout and the curves of a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, LatentTemplate, traversal_latent
from infogan.files import atomic_path, make_grid, save_png, to_uint8
from infogan.training.metrics_log import read_metrics


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """[rows*cols, 1, H, W] in [0, 1] -> one uint8 picture with a grey gutter."""
    return to_uint8(make_grid(images[: rows * cols], cols, pad, pad_value=0.5))


@torch.no_grad()
def traversal_images(g: torch.nn.Module, template: LatentTemplate, code: int = 0, cols: int = 10,
                     span: float = 1.0, seed: int = 0) -> np.ndarray:
    """The paper's figure: a row per category, a column per value of continuous
    code `code` swept over [-span, span] (the training range at span 1); each row its own
    noise from `seed`, the other codes at 0 (contract.traversal_latent). G runs on its own device; the images come back as fp32 numpy."""
    z = traversal_latent(template, code if template.n_continuous else None,
                         np.linspace(-span, span, cols, dtype=np.float32), np.random.default_rng(seed))
    was_training = g.training
    g.eval()
    device = next(g.parameters()).device
    out = g(*(torch.from_numpy(z[name]).to(device) for name in (NOISE, CATEGORICAL, CONTINUOUS))).float().cpu().numpy()
    g.train(was_training)
    return out


def save_sample_grid(g: torch.nn.Module, template: LatentTemplate, path: Path) -> None:
    """One grid per continuous code, stacked side by side."""
    k, cols = template.categories, 10
    panels = [tile(traversal_images(g, template, code=j, cols=cols), k, cols)
              for j in range(max(template.n_continuous, 1))]
    gap = np.full((panels[0].shape[0], 8), 255, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    save_png(np.concatenate(row, axis=1), path, scale=2)


def plot_curves(metrics_path: Path, out_path: Path, entropy: float) -> None:
    """Losses, L_I and test accuracy against images seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, evals = read_metrics(metrics_path, "train"), read_metrics(metrics_path, "eval")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if train:
        x = [r["images_seen"] for r in train]
        axes[0].plot(x, [r["loss_d"] for r in train], label="D loss")
        axes[0].plot(x, [r["loss_g"] for r in train], label="G loss (adversarial)")
        axes[0].set_xlabel("images seen"); axes[0].legend(); axes[0].set_title("losses")
        axes[1].plot(x, [r["l_i"] for r in train], label="L_I (categorical)")
        axes[1].axhline(entropy, color="grey", ls="--", label=f"H(c) = {entropy:.3f}")
        axes[1].set_xlabel("images seen"); axes[1].legend(); axes[1].set_title("mutual-information bound (nats)")
    if evals:
        axes[2].plot([r["images_seen"] for r in evals], [100 * r["accuracy"] for r in evals], marker="o")
        axes[2].set_ylim(0, 100); axes[2].grid(alpha=0.3)
        axes[2].set_xlabel("images seen"); axes[2].set_title("Q test accuracy (%)")
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
