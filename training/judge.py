"""Judging the generator half: does each category generate one digit, and do
the continuous codes turn slant and width without changing the digit?

A small supervised CNN (the "judge") trained on the labelled training set
reads generated images; it is used for evaluation only and never touches
InfoGAN's training. Slant and width come from image moments: slant is
mu11 / mu02 (horizontal shift per row), width the horizontal spread sqrt(mu20).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, LatentTemplate, sample_latent
from infogan.files import atomic_path
from infogan.training.checkpoint import load_tensors
from infogan.training.data import dataset_dir, load_split
from infogan.training.images import EVAL_BATCH, as_float_images


def _judge_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # N x 32 x 14 x 14
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # N x 64 x 7 x 7
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


FIDELITY_SAMPLES = 10_000  # generated digits, test digits, and training digits of the floor
# latents drawn at a time for those generated digits: the draws' order, so the figure, depends on it
FIDELITY_CHUNK = 1000


@dataclass(frozen=True)
class FidelityReference:
    """The test digits' feature statistics in the judge's penultimate layer, and the floor:
    the Fréchet distance of FIDELITY_SAMPLES training digits to them (real against real)."""

    mean: np.ndarray
    cov: np.ndarray
    floor: float


@torch.no_grad()
def judge_features(judge: nn.Module, images: torch.Tensor, batch: int = EVAL_BATCH) -> np.ndarray:
    """[N, 1, 28, 28] images in [0, 1] -> [N, 128]: the judge's activations before its last layer."""
    trunk = judge[:-1]
    at = _device(judge)
    return np.concatenate([trunk(images[i:i + batch].to(at)).double().cpu().numpy() for i in range(0, len(images), batch)])


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), as FID computes it in Inception's features."""
    (m1, s1), (m2, s2) = a, b
    # Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), a symmetric form: eigh stays
    # exact where units that never fire (after the ReLU) make the covariances singular
    w, v = np.linalg.eigh(s1)
    half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(half @ s2 @ half), 0, None)).sum()
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root)


def fidelity_reference(judge: nn.Module, data_dir: str | Path, dataset: str) -> FidelityReference:
    """The test digits, and the first training digits for the floor."""
    return reference_of_images(judge, load_split(data_dir, dataset, "test")[0], load_split(data_dir, dataset, "train")[0])


def holdout_reference(judge: nn.Module, data_dir: str | Path, dataset: str, holdout: int) -> FidelityReference:
    """For a run that holds out the last `holdout` training images: those images, and the
    first training images for the floor. Choosing a recipe never looks at the test set."""
    train_u8 = load_split(data_dir, dataset, "train")[0]
    return reference_of_images(judge, train_u8[-holdout:], train_u8[:-holdout])


def reference_of_images(judge: nn.Module, reference_u8: np.ndarray, floor_u8: np.ndarray) -> FidelityReference:
    """Statistics of the first FIDELITY_SAMPLES reference images [N, 1, 28, 28] uint8, and the
    floor: their distance to as many other real images (a held-out slice instead of the test set
    when choosing a recipe)."""
    reference = feature_stats(judge_features(judge, as_float_images(reference_u8[:FIDELITY_SAMPLES])))
    floor = feature_stats(judge_features(judge, as_float_images(floor_u8[:FIDELITY_SAMPLES])))
    return FidelityReference(reference[0], reference[1], frechet_distance(floor, reference))


def load_or_train_judge(data_dir: str | Path, dataset: str, epochs: int = 2, holdout: int = 0) -> nn.Module:
    """The judge for a dataset, trained once (seeded, in fp32 so every machine
    trains the same judge) and cached beside the data. The global RNG is left as it was.
    It knows its data, for the FidelityReference that reference_of computes when first asked;
    for a run with a held-out slice (holdout > 0), fidelity is measured against that slice."""
    net = _load_or_train_judge(data_dir, dataset, epochs)
    net.fidelity_data = (data_dir, dataset)
    if holdout:
        net.fidelity_reference = holdout_reference(net, data_dir, dataset, holdout)
    return net


def reference_of(judge: nn.Module) -> FidelityReference | None:
    """The judge's FidelityReference, computed once (None for a judge that does not know its data)."""
    if getattr(judge, "fidelity_reference", None) is None and getattr(judge, "fidelity_data", None) is not None:
        judge.fidelity_reference = fidelity_reference(judge, *judge.fidelity_data)
    return getattr(judge, "fidelity_reference", None)


def _load_or_train_judge(data_dir: str | Path, dataset: str, epochs: int) -> nn.Module:
    path = dataset_dir(data_dir, dataset) / "judge.pt"
    net = _judge_net()
    if path.is_file():
        net.load_state_dict(load_tensors(path, "judge", f"delete {path} and the next evaluation trains it again"))
        return net.eval()
    print(f"training the evaluation judge for {dataset} (once; cached in {path})", flush=True)
    x_u8, y = load_split(data_dir, dataset, "train")
    x, y = as_float_images(x_u8), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = _judge_net()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with atomic_path(path) as tmp:
        torch.save(net.state_dict(), tmp)
    return net.eval()


def slant_and_width(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image [N, 1, 28, 28]: slant mu11/mu02 and width sqrt(mu20) (pixels)."""
    w = images[:, 0].astype(np.float64)
    ys, xs = np.mgrid[0:28, 0:28]
    m = w.sum((1, 2)) + 1e-8
    cx, cy = (w * xs).sum((1, 2)) / m, (w * ys).sum((1, 2)) / m
    dx, dy = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
    mu11, mu02, mu20 = (w * dx * dy).sum((1, 2)) / m, (w * dy * dy).sum((1, 2)) / m, (w * dx * dx).sum((1, 2)) / m
    return mu11 / (mu02 + 1e-8), np.sqrt(mu20)


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _generate(g: nn.Module, latent: dict[str, np.ndarray], device: torch.device) -> torch.Tensor:
    """G's images of numpy latents, computed on G's own device (CUDA in a GPU run) and
    handed back in fp32 on `device`, the judge's (always the CPU: the judge is fp32 there,
    so every machine judges alike)."""
    at = _device(g)
    return g(*(torch.from_numpy(latent[key]).to(at) for key in (NOISE, CATEGORICAL, CONTINUOUS))).float().to(device)


@torch.no_grad()
def generation_quality(g: nn.Module, template: LatentTemplate, category_to_label: list[int],
                       judge: nn.Module, per_category: int = 100, sweep: int = 9, seed: int = 0) -> dict:
    """purity: share of a category's images the judge reads as its mapped digit;
    digits_generated: digits that are the judge's majority for some category;
    per continuous code: correlation of the code with slant and with width over
    sweeps on [-1, 1] (noise and category fixed), and how often the judged
    digit stays the same along a sweep."""
    was_training = g.training
    g.eval()
    k = template.categories
    rng = np.random.default_rng(seed)
    n = k * per_category
    cats = np.repeat(np.arange(k), per_category)
    z = sample_latent(template, n, rng, categories=cats)
    at = _device(judge)
    pred = judge(_generate(g, z, at)).argmax(1).cpu().numpy()
    mapped = np.array(category_to_label)[cats]
    purity = [float((pred[cats == c] == category_to_label[c]).mean()) for c in range(k)]
    majority = {int(np.bincount(pred[cats == c], minlength=10).argmax()) for c in range(k)}
    result = {"purity_mean": float((pred == mapped).mean()), "purity_per_category": purity,
              "digits_generated": len(majority), "codes": []}

    values = np.linspace(-1, 1, sweep, dtype=np.float32)
    base = sample_latent(template, per_category, rng)
    for j in range(template.n_continuous):
        cont = np.repeat(base[CONTINUOUS], sweep, axis=0)
        cont[:, j] = np.tile(values, per_category)
        swept = _generate(g, {NOISE: np.repeat(base[NOISE], sweep, 0), CATEGORICAL: np.repeat(base[CATEGORICAL], sweep, 0),
                              CONTINUOUS: cont}, at)
        slant, width = slant_and_width(swept.cpu().numpy())
        labels = judge(swept).argmax(1).cpu().numpy().reshape(per_category, sweep)
        code = cont[:, j]
        result["codes"].append({
            "slant_corr": float(np.corrcoef(code, slant)[0, 1]),
            "slant_spearman": float(spearmanr(code, slant)[0]),
            "width_corr": float(np.corrcoef(code, width)[0, 1]),
            "digit_kept": float((labels == labels[:, :1]).all(1).mean()),
        })
    reference = reference_of(judge)
    if reference is not None:
        result["fidelity"] = generation_fidelity(g, template, judge, reference, seed)
    g.train(was_training)
    return result


@torch.no_grad()
def generation_fidelity(g: nn.Module, template: LatentTemplate, judge: nn.Module, reference: FidelityReference,
                        seed: int = 0, n: int = FIDELITY_SAMPLES) -> dict:
    """How far n generated digits (latents drawn as the template says) lie from the test digits
    in the judge's features, as a Fréchet distance and as a multiple of the real-vs-real floor."""
    rng = np.random.default_rng([seed, 1])
    at = _device(judge)
    parts = [_generate(g, sample_latent(template, min(FIDELITY_CHUNK, n - i), rng), at) for i in range(0, n, FIDELITY_CHUNK)]
    distance = frechet_distance(feature_stats(judge_features(judge, torch.cat(parts))), (reference.mean, reference.cov))
    return {"frechet": distance, "floor": reference.floor, "ratio": distance / reference.floor, "n": n}
