"""The InfoGAN training loop: seeded, resumable, with metrics, checkpoints and pictures."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from infogan import defaults
from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, InfoganError, sample_latent
from infogan.files import write_atomic
from infogan.machine import cpu_count, has_native_bf16
from infogan.training.checkpoint import load_checkpoint, save_checkpoint
from infogan.training.config import TrainConfig, resolve
from infogan.training.data import dataset_spec, evaluation_split, fetch
from infogan.training.distributed import World, barrier, share, start, stop, world_from_env, wrap
from infogan.training.augment import (affine_draws, affine_ranges, copies_ahead, copies_draws, draw_columns, gamma_narrowed,
                                      random_affine)
from infogan.training.average import CALIBRATION_IMAGES, GeneratorAverage, WeightAverage
from infogan.training.images import as_float_images
from infogan.training.evaluate import evaluate as evaluate_encoder, evaluate_models, save_evaluation
from infogan.training.judge import generation_quality, load_or_train_judge
from infogan.training.losses import d_loss, g_adversarial_loss, info_loss, paired_information, rotation_equivariance
from infogan.training.memory import keep_freed_memory
from infogan.training.model import Discriminator, DiscriminatorPasses, Generator
from infogan.training.metrics_log import METRICS_FILE, MetricsLog
from infogan.training.misread import MISREAD_FILE, draw as draw_misread
from infogan.training.pictures import plot_curves, save_sample_grid
from infogan.training.runs import new_run_dir, point_latest, rewind_metrics

__all__ = ["TrainConfig", "train", "train_step", "select_precision"]


def select_precision(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware runs it natively (CUDA, or CPUs with
    AMX/AVX512-BF16); fp32 elsewhere, other devices included (the CPU's bf16 says
    nothing about them). bf16 keeps fp32's range, so GAN losses need no scaler."""
    if cfg.precision == "fp32":
        return None
    if cfg.precision == "bf16":
        if not torch.amp.is_autocast_available(device.type):
            raise InfoganError(f"precision=bf16 cannot be used on device {device.type}: PyTorch has no autocast "
                               "there; use precision=fp32 or auto")
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if device.type == "cpu" and has_native_bf16() else None


def learning_rates(cfg: TrainConfig) -> tuple[list[float], list[float]]:
    """The constant learning rate of each parameter group of D's and of G's Adam, in order:
    D's trunk and head, G, then Q in D's optimiser (the original code's wiring) or in G's."""
    d_rates, g_rates = [cfg.lr_d], [cfg.lr_g]
    (d_rates if cfg.info_in_d_step else g_rates).append(cfg.lr_q)
    return d_rates, g_rates


def learning_rate_scale(cfg: TrainConfig, step: int) -> float:
    """The factor on every learning rate for update `step` (0-based): 1, then with lr_decay
    falling linearly over the last lr_decay share of the updates, to 1/n at the last of n."""
    n = round(cfg.lr_decay * cfg.total_steps)
    return 1.0 if n == 0 else min(1.0, (cfg.total_steps - step) / n)


def linear_rise(step: int, a: int, b: int, start: float = 0.0) -> float:
    """`start` before update `a` (0-based), rising linearly to 1 at update `b` and 1 from there on."""
    if step >= b:
        return 1.0
    return start if step < a else start + (1.0 - start) * (step - a) / (b - a)


def gamma_reached(cfg: TrainConfig, step: int) -> float:
    """How far both gammas' largest powers have come from 1 to their full value at update `step`:
    0 before gamma_from, rising linearly to 1 at gamma_to; 1 throughout without a ramp."""
    return linear_rise(step, cfg.gamma_from, cfg.gamma_to)


def noise_scale_factor(cfg: TrainConfig, step: int) -> float:
    """The factor on the template's noise for update `step`: noise_start / noise_scale up to
    noise_widen_from, rising linearly to 1 at noise_widen_to; 1 throughout without noise_start."""
    if not cfg.noise_start:
        return 1.0
    return linear_rise(step, cfg.noise_widen_from, cfg.noise_widen_to, cfg.noise_start / cfg.template.noise_scale)


def set_learning_rates(cfg: TrainConfig, step: int, opt_d, opt_g) -> None:
    """Each group's rate for update `step`: a function of the step alone, so a resumed run
    follows the same schedule (an extended run's decay moves to its new end)."""
    scale = learning_rate_scale(cfg, step)
    for opt, rates in zip((opt_d, opt_g), learning_rates(cfg)):
        for group, rate in zip(opt.param_groups, rates, strict=True):
            group["lr"] = rate * scale


def make_optimizers(cfg: TrainConfig, g: Generator, d: Discriminator):
    """D's Adam trains the trunk and the D head (and, in the original code's
    wiring, Q); G's Adam trains G (and Q in the paper-text wiring)."""
    betas = (cfg.beta1, cfg.beta2)
    d_params, g_params = [[*d.trunk.parameters(), *d.d_head.parameters()]], [list(g.parameters())]
    (d_params if cfg.info_in_d_step else g_params).append(list(d.q_head.parameters()))
    d_rates, g_rates = learning_rates(cfg)  # in the same order
    d_groups = [{"params": p, "lr": r} for p, r in zip(d_params, d_rates, strict=True)]
    g_groups = [{"params": p, "lr": r} for p, r in zip(g_params, g_rates, strict=True)]
    # fused: one pass over each parameter instead of a dozen elementwise ops; the unfused
    # update took a third of a CPU step (profiled). PyTorch fuses on the CPU and CUDA
    # (the tests' meta device, which stands in for CUDA, has no fused kernel)
    fused = next(g.parameters()).device.type in ("cpu", "cuda")
    return (torch.optim.Adam(d_groups, betas=betas, fused=fused or None),
            torch.optim.Adam(g_groups, betas=betas, fused=fused or None))


def train_step(cfg: TrainConfig, g: torch.nn.Module, d: Discriminator, opt_d, opt_g,
               real: torch.Tensor, latent: dict[str, torch.Tensor], autocast,
               transform_rngs: tuple[torch.Generator | torch.Tensor, torch.Generator | torch.Tensor] | None = None,
               d_passes: torch.nn.Module | None = None, of: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
    """One D step and one G (and Q) step. transform_rngs draw the random affine
    transforms of real and of generated images (fixed seeds when not given), or are
    those draws made ahead (BatchStream.transforms). The figures returned stay on the
    device: nothing in a step waits for the GPU.
    Under DistributedDataParallel, g and d_passes are the wrapped modules, d the
    plain discriminator, and of=(start, total) places this process's rows in the
    global batch."""
    t = cfg.template
    rng_real, rng_fake = transform_rngs or (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    d_passes = d_passes or DiscriminatorPasses(d, autocast)
    noise, cat, cont = latent[NOISE], latent[CATEGORICAL], latent[CONTINUOUS]
    category = cat.argmax(1)  # the sampled category of each latent

    # (1) D step: maximise log D(x) + log(1 - D(G(z, c)))
    #     [original wiring: minus lambda * L_I on the same generated images]
    #     [with lambda_real: minus lambda_real * I(Q(x); Q(transformed x)) on real images]
    #     [with overcluster: the same term for the auxiliary over-clustering head]
    #     [with subheads: the same term for each auxiliary sub-head of K categories, their mean]
    #     [with lambda_rotation: Q's first continuous code must follow the rotation of real images]
    #     D sees its batches in one call, each with its own batch statistics, in
    #     autocast groups: (real, generated), [(transformed generated)], [(transformed real)]
    #     [with real_copies: each real image's transform is drawn that many times, and both terms read every copy]
    #     [with real_shear: each real transform also shears; the rotation prior follows the strokes' whole tilt]
    #     [with real_warp: each real transform also bends strokes by a smooth local warp]
    #     [with real_gamma: each real transform also makes the ink brighter or darker; fake_gamma: the fakes' too;
    #      with gamma_from and gamma_to, the draws already hold the power range reached at this update]
    real_t, turn = [], []
    if cfg.lambda_real > 0 or cfg.lambda_rotation > 0:
        total = of[1] if of else len(real)
        for draws in copies_draws(rng_real, total, cfg.real_copies, draw_columns(cfg.real_shear, cfg.real_warp, cfg.real_gamma)):
            moved, angle = random_affine(real, draws, return_angle=True, of=of, shear_degrees=cfg.real_shear,
                                         warp_px=cfg.real_warp, gamma=cfg.real_gamma,
                                         **affine_ranges(cfg.real_transform_strength))
            real_t.append(moved)
            turn.append(angle)
    with autocast():
        fake = g(noise, cat, cont)
    fake_t = random_affine(fake, rng_fake, of=of, gamma=cfg.fake_gamma) if cfg.transform_fakes else None
    groups = [(real, fake.detach())]
    if cfg.info_in_d_step and fake_t is not None:
        groups.append((fake_t.detach(),))
    if real_t:
        groups.append(tuple(real_t))
    # with auxiliary heads, the real images (first) and their transforms (last) also give their logits
    n_batches = sum(len(group) for group in groups)
    auxiliary = (0, *range(n_batches - len(real_t), n_batches)) if cfg.overcluster or cfg.subheads > 1 else ()
    passes = d_passes(*groups, auxiliary=auxiliary)
    (d_real, q_cat_real, q_cont_real), (d_fake, q_cat, q_cont) = passes[0][:3], passes[1]
    loss_d = d_loss(d_real.float(), d_fake.float())
    if cfg.info_in_d_step:
        info_d, _ = info_loss(t, q_cat.float(), q_cont.float(), category, cont, cfg.lambda_cat, cfg.lambda_cont)
        loss_d = loss_d + info_d
        if fake_t is not None:
            q_cat_t = passes[2][1]
            loss_d = loss_d + cfg.lambda_cat * F.cross_entropy(q_cat_t.float(), category)
    i_real = loss_d.new_zeros(())
    transformed = passes[len(passes) - len(real_t):]  # the real images' copies, in order
    if cfg.lambda_real > 0:
        # one joint distribution over every (image, copy) pair, as IIC stacks its repeats
        i_real = paired_information(q_cat_real.repeat(len(real_t), 1), torch.cat([p[1] for p in transformed]),
                                    marginal_weight=cfg.iic_marginal_weight)
        loss_d = loss_d - cfg.lambda_real * i_real
    names = d.q_head.auxiliary_names  # the auxiliary heads' logits, by name, of the real images and of each copy
    aux_real, aux_t = dict(zip(names, passes[0][3:])), [dict(zip(names, p[3:])) for p in transformed]
    if cfg.overcluster:  # the last copy only
        loss_d = loss_d - cfg.lambda_real * paired_information(aux_real["overcluster"], aux_t[-1]["overcluster"])
    if cfg.subheads > 1:  # each sub-head over every (image, copy) pair, as the categorical head; their mean
        sub_real, sub_t = aux_real["subheads"].repeat(len(real_t), 1, 1), torch.cat([a["subheads"] for a in aux_t])
        i_sub = torch.stack([paired_information(sub_real[:, h], sub_t[:, h], marginal_weight=cfg.iic_marginal_weight)
                             for h in range(cfg.subheads - 1)])
        loss_d = loss_d - cfg.lambda_real * i_sub.mean()
    if cfg.lambda_rotation > 0:
        lo, hi = t.continuous[0]
        loss_d = loss_d + cfg.lambda_rotation * rotation_equivariance(
            q_cont_real[:, 0].float().repeat(len(real_t)), torch.cat([p[2][:, 0].float() for p in transformed]),
            torch.cat(turn) * cfg.real_transform_strength, (hi - lo) / 2)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # (2) G (and Q) step: non-saturating adversarial loss + lambda * L_I.
    #     D's weights take no gradient here unless Q trains in this step, so
    #     backward computes only what G needs.
    frozen = list(d.parameters()) if cfg.info_in_d_step else [*d.trunk.parameters(), *d.d_head.parameters()]
    for p in frozen:
        p.requires_grad_(False)
    with autocast():
        d_fake, q_cat, q_cont = d(fake)
    loss_adv = g_adversarial_loss(d_fake.float())
    info, l_i = info_loss(t, q_cat.float(), q_cont.float(), category, cont, cfg.lambda_cat, cfg.lambda_cont)
    if fake_t is not None:
        with autocast():
            _, q_cat_t, _ = d(fake_t)
        info = info + cfg.lambda_cat * F.cross_entropy(q_cat_t.float(), category)
    opt_g.zero_grad(set_to_none=True)
    (loss_adv + info).backward()
    opt_g.step()
    for p in frozen:
        p.requires_grad_(True)
    return {"loss_d": loss_d.detach(), "loss_g": loss_adv.detach(), "l_i": l_i, "info": info.detach(),
            "i_real": i_real.detach()}


LATENT_KEYS = (NOISE, CATEGORICAL, CONTINUOUS)  # G's inputs, in its argument order
# what the last evaluation of an averaged encoder keeps of the live one's, beside it
LIVE_ENCODER_KEYS = ("accuracy", "labels_with_own_category", "category_to_label", "transform_agreement",
                     "category_share_max")


class BatchStream:
    """Deterministic batches: pass p over the data is permutation p of a
    generator seeded by (seed, p), so step s always sees the same images and
    latents, whether the run was resumed or not.

    Latents and transform draws are made on the host for CHUNK steps at a time and
    copied to the device in one transfer each (from pinned memory on CUDA, without
    waiting): the values are exactly those drawn step by step, and a GPU step never
    waits for a host-to-device copy. The permutation lives on the images' device."""

    CHUNK = 100  # steps drawn ahead

    def __init__(self, cfg: TrainConfig, images: torch.Tensor):
        self.cfg, self.images = cfg, images
        self.steps_per_pass = max(len(images) // cfg.batch_size, 1)
        self._pass, self._perm = -1, None
        self._ahead: dict[str, tuple] = {}  # kind -> (chunk, device, tensors)

    def real(self, step: int) -> torch.Tensor:
        p, i = divmod(step, self.steps_per_pass)
        if p != self._pass:
            perm = np.random.default_rng([self.cfg.seed, 1, p]).permutation(len(self.images))
            self._pass, self._perm = p, torch.from_numpy(perm).to(self.images.device)
        return self.images[self._perm[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size]]

    def transform_rngs(self, step: int) -> tuple[torch.Generator, torch.Generator]:
        """Generators of step s's transforms of real and of generated images."""
        base = self.cfg.seed * 1_000_003 + step
        return torch.Generator().manual_seed(base), torch.Generator().manual_seed(base + 500_000_000)

    def _latent_on_host(self, step: int) -> list[torch.Tensor]:
        z = sample_latent(self.cfg.template, self.cfg.batch_size, np.random.default_rng([self.cfg.seed, 2, step]))
        z[NOISE] *= np.float32(noise_scale_factor(self.cfg, step))  # exact for a power of two (0.25 of 0.5)
        return [torch.from_numpy(z[k]) for k in LATENT_KEYS]

    def _drawn_ahead(self, kind: str, step: int, device, draw) -> list[torch.Tensor]:
        """Step s's rows of CHUNK steps' tensors drawn by draw(step) -> [tensors], on device."""
        chunk, i = divmod(step, self.CHUNK)
        device = torch.device(device)
        held = self._ahead.get(kind)
        if held is None or held[:2] != (chunk, device):
            per_step = [draw(s) for s in range(chunk * self.CHUNK, (chunk + 1) * self.CHUNK)]
            held = (chunk, device, [_to_device(torch.cat(parts), device) for parts in zip(*per_step)])
            self._ahead[kind] = held
        b = self.cfg.batch_size
        return [t[i * b:(i + 1) * b] for t in held[2]]

    def latent(self, step: int, device) -> dict[str, torch.Tensor]:
        return dict(zip(LATENT_KEYS, self._drawn_ahead("latent", step, device, self._latent_on_host)))

    def transforms(self, step: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Step s's affine draws of real and of generated images (those of transform_rngs), on device;
        while the gammas rise (gamma_from to gamma_to), their columns narrowed to the powers reached."""
        b, copies = self.cfg.batch_size, self.cfg.real_copies
        columns = (draw_columns(self.cfg.real_shear, self.cfg.real_warp, self.cfg.real_gamma), draw_columns(gamma=self.cfg.fake_gamma))
        draw = lambda s: [copies_ahead(affine_draws(g, b * n, c), n)  # noqa: E731
                          for g, n, c in zip(self.transform_rngs(s), (copies, 1), columns)]
        real, fake = self._drawn_ahead("transforms", step, device, draw)
        reached = gamma_reached(self.cfg, step)
        if reached < 1:  # the gammas rise from gamma_from to gamma_to: the same draws, closer to a power of 1
            if self.cfg.real_gamma > 1:
                real = gamma_narrowed(real, copies, self.cfg.real_gamma, reached)
            if self.cfg.fake_gamma > 1:
                fake = gamma_narrowed(fake, 1, self.cfg.fake_gamma, reached)
        return real, fake


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":  # pinned: the copy runs alongside the GPU's work
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


@dataclass
class Run:
    """What a run holds while it trains: its folder, models, optimisers, data and log."""

    cfg: TrainConfig
    dir: Path
    g: Generator
    d: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    autocast: Callable
    stream: "BatchStream"
    test_images: torch.Tensor
    test_labels: np.ndarray
    calibration_images: torch.Tensor  # real training images, no labels: for batch-norm statistics
    label_names: list[str]
    judge: torch.nn.Module | None
    log: MetricsLog
    world: World = World()
    g_train: torch.nn.Module | None = None  # g, or g under DistributedDataParallel
    d_passes: torch.nn.Module | None = None  # D's passes of the D step, under DDP when distributed
    step: int = 0
    evaluation: dict | None = None
    average: GeneratorAverage | None = None  # with cfg.ema_decay (rank 0's)
    d_average: WeightAverage | None = None  # D-and-Q's, with cfg.q_ema_decay (rank 0's)

    _published: tuple[int, torch.nn.Module] | None = None  # (step, calibrated average) measured once per step

    def published_generator(self) -> torch.nn.Module:
        """The generator that is judged, drawn and exported: G's moving average (its batch
        norm measured on its own images, once per step) with cfg.ema_decay, else G itself."""
        if self.average is None:
            return self.g
        if self._published is None or self._published[0] != self.step:
            self._published = (self.step, self.average.calibrated())
        return self._published[1]

    def published_discriminator(self) -> Discriminator:
        """The D-and-Q whose encoder is evaluated and exported: their moving average with
        cfg.q_ema_decay, else D itself (evaluation measures its batch norm on real images)."""
        return self.d if self.d_average is None else self.d_average.module

    def evaluate(self, with_judge: bool, last: bool = False) -> Discriminator:
        """Evaluate now, log it, keep it; returns D with batch norm calibrated on real images.
        The last judged evaluation of an averaged G also judges the live G, beside it; every
        evaluation of an averaged encoder also scores the live one (encoder_live)."""
        cfg = self.cfg
        self.evaluation, calibrated = evaluate_models(
            self.published_generator(), self.published_discriminator(), self.test_images, self.test_labels,
            self.label_names, cfg.dataset, self.step, cfg.images_seen(self.step), self.calibration_images,
            self.judge if with_judge else None)
        if last and with_judge and self.judge is not None and self.average is not None:
            self.evaluation["generation_live"] = generation_quality(
                self.g, cfg.template, self.evaluation["category_to_label"], self.judge)
            self.g.train()
        if self.d_average is not None:
            live, _ = evaluate_encoder(self.d, self.test_images, self.test_labels, self.label_names,
                                       self.calibration_images)
            self.evaluation["encoder_live"] = {k: live[k] for k in LIVE_ENCODER_KEYS}
        self.log.evaluation(self.step, self.evaluation)
        return calibrated

    def checkpoint(self, calibrated: Discriminator | None = None) -> None:
        cfg = self.cfg
        state = {
            "template": cfg.template.to_dict(),
            "model": cfg.architecture(),
            "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "step": self.step, "images_seen": cfg.images_seen(self.step), "world_size": self.world.size,
            "config": cfg.to_dict(), "evaluation": self.evaluation, "metrics_window": self.log.state(),
        }
        if calibrated is not None:
            state["discriminator_calibrated"] = calibrated.state_dict()
        if self.average is not None:  # the calibrated average's weights: what export publishes
            state["generator_average"] = {"weights": self.published_generator().state_dict(),
                                          "updates": self.average.updates, "decay": self.average.decay}
        if self.d_average is not None:  # to resume it; export publishes discriminator_calibrated
            state["discriminator_average"] = {**self.d_average.state_dict(), "decay": self.d_average.decay}
        save_checkpoint(self.dir / defaults.CHECKPOINT_FILE, state)


def train(cfg: TrainConfig | None, resume: str | Path | None = None, progress: bool = True,
          epochs: int | None = None) -> Path:
    """Train (or resume) a run; returns the run directory.

    resume: a run directory; training continues from its checkpoint with its own
    saved configuration, to `epochs` epochs where given (extending the run). cfg is
    then None, or a configuration whose settings, wherever they differ from its
    preset's, are the run's own: one that would change the run is refused, as the
    CLI refuses flags with --resume, rather than silently replaced.
    """
    world = world_from_env()
    device = start(world)
    try:
        # rank 0 opens (or extends) the run folder; every rank trains on its config
        cfg, run_dir = share(world, _open_run_dir(cfg, resume, epochs) if world.main else None)
        run = set_up(cfg, run_dir, progress and world.main, resumed=resume is not None, world=world, device=device)
        with run.log:
            calibrated = _loop(run)
        if world.main:
            _finish(run, calibrated)
        barrier(world)
    finally:
        stop(world)
    return run_dir


class WorldSizeChanged(UserWarning):
    """A run resumed on a different number of processes than it was trained on."""


def world_size_change(run_dir: Path, trained_on: int, now: int, batch_size: int) -> str:
    return (f"resume={run_dir} was trained on {trained_on} process(es) and continues on {now}: the global batch "
            f"of {batch_size} and the batch stream stay the same, but each rank's batch-norm statistics now cover "
            f"{batch_size // now} images instead of {batch_size // trained_on}, so the result will differ from an "
            f"uninterrupted {trained_on}-process run")


def _open_run_dir(cfg: TrainConfig | None, resume: str | Path | None, epochs: int | None) -> tuple[TrainConfig, Path]:
    """A new run folder with cfg's config.json, or the resumed one with its own config."""
    if resume is None and cfg is None:
        raise InfoganError("cfg=None is invalid for a new run: give a TrainConfig (training.config.resolve), "
                           "or resume= a run folder")
    if cfg is not None:
        cfg.validate()
    if resume is None:
        run = new_run_dir(cfg)
        write_atomic(run / defaults.RUN_CONFIG_FILE, cfg.to_json())
    else:
        run = Path(resume)
        if not (run / defaults.RUN_CONFIG_FILE).is_file():
            raise InfoganError(f"resume={run} is not a run directory (no config.json): pass runs/<name> or runs/latest")
        run = run.resolve()
        saved = TrainConfig.load(run / defaults.RUN_CONFIG_FILE)
        if cfg is not None:
            refuse_changes_on_resume(cfg, saved, run)
        cfg = saved
        if epochs is not None:
            done = load_checkpoint(run / defaults.CHECKPOINT_FILE)["step"]
            if epochs * cfg.steps_per_epoch < done:
                raise InfoganError(f"epochs={epochs} is invalid: the run has already trained {done} updates "
                                   f"({-(-done // cfg.steps_per_epoch)} epochs); give at least that many to extend it")
            cfg.epochs = epochs
            cfg.validate()
            write_atomic(run / defaults.RUN_CONFIG_FILE, cfg.to_json())
    point_latest(run)
    return cfg, run


def refuse_changes_on_resume(cfg: TrainConfig, saved: TrainConfig, run: Path) -> None:
    """One line naming the first setting of cfg that a resume would silently drop: a
    field cfg gives (it differs from its preset's) unlike the run's, or another preset.
    epochs may differ: the `epochs` argument extends a run."""
    preset = resolve(cfg.preset, dataset=cfg.dataset)
    for f in dataclasses.fields(TrainConfig):
        mine, theirs = getattr(cfg, f.name), getattr(saved, f.name)
        if f.name == "epochs" or mine == theirs or (f.name != "preset" and mine == getattr(preset, f.name)):
            continue
        raise InfoganError(f"{f.name}={mine!r} cannot be used with resume={run}: the run has {f.name}={theirs!r} and "
                           "keeps its own config.json; pass cfg=None (only epochs= may change)")


@dataclass
class _Data:
    train_images: torch.Tensor
    test_images: torch.Tensor
    test_labels: np.ndarray


def _set_threads(threads: int, world: World) -> None:
    """cfg.threads, or under torchrun each process's share of the cores."""
    if threads or world.distributed:
        torch.set_num_threads(threads or max(1, cpu_count() // world.local_size))


def _autocast(cfg: TrainConfig, device: torch.device) -> Callable:
    amp_dtype = select_precision(cfg, device)
    return (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext


def _load_data(data_dir: str, dataset: str, holdout: int, train_subset: int, eval_subset: int, world: World,
               device: torch.device) -> _Data:
    """The training images and the evaluation set (the held-out training images, or the test set), on device."""
    if world.main:
        fetch(data_dir, dataset)
    barrier(world)  # the other ranks read what rank 0 verified
    train_u8, test_u8, test_labels = evaluation_split(data_dir, dataset, holdout, train_subset, eval_subset)
    return _Data(as_float_images(train_u8, device), as_float_images(test_u8, device), test_labels)


def _restore(run_dir: Path, g: Generator, d: Discriminator, opt_g, opt_d, world: World,
             batch_size: int) -> tuple[int, dict | None, dict | None, dict | None, dict | None]:
    """Weights and optimiser states from the run's checkpoint; its (step, evaluation, metrics
    window, generator average, discriminator average)."""
    ckpt = load_checkpoint(run_dir / defaults.CHECKPOINT_FILE)
    g.load_state_dict(ckpt["generator"])
    d.load_state_dict(ckpt["discriminator"])
    opt_g.load_state_dict(ckpt["opt_g"])
    opt_d.load_state_dict(ckpt["opt_d"])
    trained_on = ckpt.get("world_size", 1)  # checkpoints from before DDP: one process
    if trained_on != world.size and world.main:
        warnings.warn(world_size_change(run_dir, trained_on, world.size, batch_size), WorldSizeChanged, stacklevel=3)
    return (ckpt["step"], ckpt.get("evaluation"), ckpt.get("metrics_window"), ckpt.get("generator_average"),
            ckpt.get("discriminator_average"))


def _average(decay: float, module: torch.nn.Module, saved: dict | None,
             kind: type[WeightAverage] = GeneratorAverage) -> WeightAverage | None:
    """A moving average of module's weights with `decay` (None when 0), continued from a
    checkpoint's where saved: G's (a GeneratorAverage) or D-and-Q's (kind=WeightAverage)."""
    if not decay:
        return None
    average = kind(module, decay)
    if saved is not None:
        average.load_state_dict(saved)
    return average


def _open_log(run_dir: Path, cfg: TrainConfig, progress: bool, world: World, step: int, window: dict | None) -> MetricsLog:
    """The metrics log, rewound to `step` (rank 0's alone is written)."""
    if world.main:
        rewind_metrics(run_dir / METRICS_FILE, step)
    log = MetricsLog(run_dir / METRICS_FILE if world.main else Path(os.devnull), cfg, progress)
    log.restore(window)
    return log


def set_up(cfg: TrainConfig, run_dir: Path, progress: bool, resumed: bool, world: World = World(),
           device: torch.device | None = None) -> Run:
    """Seeds, threads and precision; the data; the models and optimisers (from the
    checkpoint when resumed); the metrics log; the judge."""
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    _set_threads(cfg.threads, world)
    if world.distributed and not cfg.info_in_d_step:
        raise InfoganError("info_in_d_step=False is not supported on several processes: "
                           "Q would train outside DDP's gradient averaging")
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":  # each update's large buffers are reused, not faulted in again (memory.py)
        keep_freed_memory()
    autocast = _autocast(cfg, device)
    data = _load_data(cfg.data_dir, cfg.dataset, cfg.holdout, cfg.train_subset, cfg.eval_subset, world, device)

    g = Generator(cfg.template).to(device)
    d = Discriminator(cfg.template, **cfg.architecture()).to(device)
    opt_d, opt_g = make_optimizers(cfg, g, d)
    step, evaluation, window, average, d_average = (
        _restore(run_dir, g, d, opt_g, opt_d, world, cfg.batch_size) if resumed else (0, None, None, None, None))
    log = _open_log(run_dir, cfg, progress, world, step, window)
    g.train(), d.train()
    return Run(cfg=cfg, dir=run_dir, g=g, d=d, opt_g=opt_g, opt_d=opt_d, autocast=autocast,
               stream=BatchStream(cfg, data.train_images), test_images=data.test_images,
               test_labels=data.test_labels, calibration_images=data.train_images[:CALIBRATION_IMAGES],
               label_names=list(dataset_spec(cfg.dataset).label_names),
               judge=load_or_train_judge(cfg.data_dir, cfg.dataset, holdout=cfg.holdout) if cfg.judge and world.main else None,
               log=log, world=world, g_train=wrap(g, world, device),
               d_passes=wrap(DiscriminatorPasses(d, autocast), world, device), step=step, evaluation=evaluation,
               average=_average(cfg.ema_decay, g, average) if world.main else None,
               d_average=_average(cfg.q_ema_decay, d, d_average, WeightAverage) if world.main else None)


def _loop(run: Run) -> Discriminator | None:
    """Steps to the end; at each epoch's end, by the schedule: evaluate (the judge at
    checkpoint epochs), save a sample grid, checkpoint. Returns the last calibrated D."""
    cfg, calibrated = run.cfg, None
    device = next(run.g.parameters()).device
    rows = run.world.rows(cfg.batch_size)  # this rank's share of each global batch
    while run.step < cfg.total_steps:
        if cfg.lr_decay:
            set_learning_rates(cfg, run.step, run.opt_d, run.opt_g)
        latent = {k: v[rows] for k, v in run.stream.latent(run.step, device).items()}
        out = train_step(cfg, run.g_train, run.d, run.opt_d, run.opt_g, run.stream.real(run.step)[rows], latent,
                         run.autocast, run.stream.transforms(run.step, device), run.d_passes, (rows.start, cfg.batch_size))
        run.step += 1
        if run.average is not None:
            run.average.update(run.g)
        if run.d_average is not None:
            run.d_average.update(run.d)
        run.log.step(run.step, out)
        if run.step % cfg.steps_per_epoch and run.step != cfg.total_steps or not run.world.main:
            continue
        epoch = -(-run.step // cfg.steps_per_epoch)
        last = run.step == cfg.total_steps
        if epoch % cfg.eval_every == 0 or last:
            calibrated = run.evaluate(with_judge=epoch % cfg.checkpoint_every == 0 or last, last=last)
        if epoch % cfg.samples_every == 0 or last:
            save_sample_grid(run.published_generator(), cfg.template, run.dir / defaults.SAMPLES_DIR / f"epoch_{epoch:03d}.png")
        if epoch % cfg.checkpoint_every == 0 and not last:
            run.checkpoint()
    return calibrated


def _finish(run: Run, calibrated: Discriminator | None) -> None:
    """The final checkpoint (with the calibrated D export publishes), evaluation.json, curves, and
    misread.png: the real images Q reads as another class, above G's draws for their class."""
    if calibrated is None:  # nothing left to train (a finished run resumed)
        calibrated = run.evaluate(with_judge=True, last=True)
    run.checkpoint(calibrated)
    save_evaluation(run.dir, run.evaluation)
    plot_curves(run.dir / METRICS_FILE, run.dir / "curves.png", run.cfg.template.entropy())
    draw_misread(run.published_generator(), calibrated, run.test_images, run.test_labels, run.label_names,
                 run.dir / MISREAD_FILE)
