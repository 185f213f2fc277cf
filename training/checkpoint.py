"""Checkpoints: atomic writes, clear errors, and models rebuilt from what they carry.

A checkpoint is a dict saved with torch.save:
  format_version  int (CHECKPOINT_FORMAT)
  template        LatentTemplate.to_dict()
  model           {"leaky_slope": float, "overcluster": int, "subheads": int, "trunk_channels": int,
                  "trunk_convolutions": int}: the rest of the architecture's settings
  generator, discriminator   state_dicts
  opt_g, opt_d    optimizer state_dicts (absent in a weights-only export)
  step, images_seen          progress counters
  config          the resolved training configuration (dict)
  rng             {"torch": ByteTensor, "numpy": bit_generator state}
  evaluation      the latest evaluation dict, or None
  discriminator_calibrated   (final checkpoint) D with batch-norm statistics of real images
  generator_average          (with ema_decay) {"weights": the moving average of G's weights, batch
                             norm measured on its own images, "updates": int, "decay": float}: the
                             generator export publishes
  discriminator_average      (with q_ema_decay) {"weights": the moving average of D-and-Q's weights,
                             "updates": int, "decay": float}: to resume it; its calibrated copy is
                             discriminator_calibrated, the encoder export publishes
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import torch

from infogan.contract import InfoganError, LatentTemplate
from infogan.files import atomic_path
from infogan.training.model import (DEFAULT_LEAKY_SLOPE, DEFAULT_OVERCLUSTER, DEFAULT_SUBHEADS, DEFAULT_TRUNK_CHANNELS,
                                    DEFAULT_TRUNK_CONVOLUTIONS, Discriminator, Generator, check_architecture)

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a crash
    leaves either the previous checkpoint or the new one, never half of one."""
    try:
        with atomic_path(path) as tmp:
            torch.save({"format_version": CHECKPOINT_FORMAT, **state}, tmp)
    except OSError as e:  # a full disk, a lost mount: the previous checkpoint is still there
        raise InfoganError(f"checkpoint={path} could not be written ({e.strerror or e}): the previous "
                           "checkpoint is kept; free space and resume with --resume") from None


def load_tensors(path: Path, what: str, remedy: str) -> Any:
    """torch.load on the CPU of tensors and plain data (dicts, lists, numbers, strings)
    only. Unpickling anything else can run code, so weights_only=True refuses it, whatever
    the installed torch's default; every refusal is one line naming `what`=path."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower():
            raise InfoganError(f"{what}={path} is corrupted or not a {what}: it holds objects other than tensors "
                               f"and plain data, which are not unpickled since that could run code; {remedy}") from None
        raise InfoganError(f"{what}={path} is corrupted or not a {what} (UnpicklingError): {remedy}") from None
    except Exception as e:  # truncated or not a torch file at all
        raise InfoganError(f"{what}={path} is corrupted or not a {what} ({type(e).__name__}): {remedy}") from None


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint on the CPU, with one clear line for every way it can be bad."""
    path = Path(path)
    if not path.is_file():
        raise InfoganError(f"checkpoint={path} does not exist: train first (make train) or pass an existing run")
    ckpt = load_tensors(path, "checkpoint", "retrain or pick another run")
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != CHECKPOINT_FORMAT:
        got = ckpt.get("format_version") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InfoganError(f"checkpoint={path} has format {got!r}: this version reads format {CHECKPOINT_FORMAT}")
    for key in ("template", "generator", "discriminator"):
        if key not in ckpt:
            raise InfoganError(f"checkpoint={path} lacks '{key}': it is incomplete")
    return ckpt


def checkpoint_template(ckpt: dict) -> LatentTemplate:
    return LatentTemplate.from_dict(ckpt["template"])


def architecture(ckpt: dict) -> dict:
    """The checkpoint's model settings, checked before any module is built from them: a
    checkpoint comes from outside, and a head of a billion categories would exhaust memory
    rather than say what is wrong. Absent settings (older checkpoints) take their defaults."""
    model = ckpt.get("model", {})
    if not isinstance(model, dict):
        raise InfoganError(f"checkpoint model={type(model).__name__} is invalid: must be a dict of settings")
    settings = {"leaky_slope": model.get("leaky_slope", DEFAULT_LEAKY_SLOPE),
                "overcluster": model.get("overcluster", DEFAULT_OVERCLUSTER),
                "subheads": model.get("subheads", DEFAULT_SUBHEADS),
                "trunk_channels": model.get("trunk_channels", DEFAULT_TRUNK_CHANNELS),
                "trunk_convolutions": model.get("trunk_convolutions", DEFAULT_TRUNK_CONVOLUTIONS)}
    check_architecture(**settings, source="checkpoint ")
    return {**settings, "leaky_slope": float(settings["leaky_slope"])}


def build_models(ckpt: dict) -> tuple[Generator, Discriminator]:
    """Rebuild G and D from a checkpoint, weights loaded, in eval mode."""
    template = checkpoint_template(ckpt)
    settings = architecture(ckpt)
    g = Generator(template)
    d = Discriminator(template, **settings)
    try:
        # the published generator: G's moving average where training kept one
        g.load_state_dict(ckpt["generator_average"]["weights"] if "generator_average" in ckpt else ckpt["generator"])
        # the encoder's batch norm recalibrated on real images, where training saved it
        d.load_state_dict(ckpt.get("discriminator_calibrated", ckpt["discriminator"]))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InfoganError(f"checkpoint weights do not fit latent template {template.to_json()} and model settings "
                           f"{json.dumps(settings, sort_keys=True)}: {first}") from None
    return g.eval(), d.eval()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
