"""The InfoGAN training loop: seeded, resumable, with metrics, checkpoints and pictures."""

from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from infogan.contract import CATEGORICAL, CONTINUOUS, NOISE, InfoganError, sample_latent
from infogan.files import write_atomic
from infogan.training.checkpoint import load_checkpoint, save_checkpoint
from infogan.training.config import TrainConfig
from infogan.training.data import dataset_spec, fetch, load_split
from infogan.training.evaluate import evaluate
from infogan.training.judge import generation_quality, load_or_train_judge
from infogan.training.augment import random_affine
from infogan.training.losses import d_loss, g_adversarial_loss, info_loss, paired_information
from infogan.training.model import Discriminator, Generator
from infogan.training.pictures import plot_curves, save_sample_grid

__all__ = ["TrainConfig", "train", "train_step", "select_precision"]


def select_precision(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware runs it natively (CUDA, or CPUs with
    AMX/AVX512-BF16); fp32 elsewhere. bf16 keeps fp32's range, so GAN losses
    need no scaler."""
    if cfg.precision == "fp32":
        return None
    if cfg.precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return torch.bfloat16 if (" amx_bf16" in flags or " avx512_bf16" in flags) else None


def make_optimizers(cfg: TrainConfig, g: Generator, d: Discriminator):
    """D's Adam trains the trunk and the D head (and, in the original code's
    wiring, Q); G's Adam trains G (and Q in the paper-text wiring)."""
    betas = (cfg.beta1, cfg.beta2)
    d_groups = [{"params": [*d.trunk.parameters(), *d.d_head.parameters()], "lr": cfg.lr_d}]
    g_groups = [{"params": list(g.parameters()), "lr": cfg.lr_g}]
    (d_groups if cfg.info_in_d_step else g_groups).append({"params": list(d.q_head.parameters()), "lr": cfg.lr_q})
    # fused: one pass over each parameter instead of a dozen elementwise ops;
    # the unfused update took a third of a CPU step (profiled)
    return torch.optim.Adam(d_groups, betas=betas, fused=True), torch.optim.Adam(g_groups, betas=betas, fused=True)


def train_step(cfg: TrainConfig, g: Generator, d: Discriminator, opt_d, opt_g,
               real: torch.Tensor, latent: dict[str, torch.Tensor], autocast,
               transform_rngs: tuple[torch.Generator, torch.Generator] | None = None) -> dict[str, float]:
    """One D step and one G (and Q) step. transform_rngs draw the random affine
    transforms of real and of generated images (fixed seeds when not given)."""
    t = cfg.template
    rng_real, rng_fake = transform_rngs or (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    noise, cat, cont = latent[NOISE], latent[CATEGORICAL], latent[CONTINUOUS]
    category = cat.argmax(1)  # the sampled category of each latent

    # (1) D step: maximise log D(x) + log(1 - D(G(z, c)))
    #     [original wiring: minus lambda * L_I on the same generated images]
    #     [with lambda_real: minus lambda_real * I(Q(x); Q(transformed x)) on real images]
    real_t = random_affine(real, rng_real) if cfg.lambda_real > 0 else None
    with autocast():
        fake = g(noise, cat, cont)
        d_real, q_cat_real, _ = d(real)
        d_fake, q_cat, q_cont = d(fake.detach())
    loss_d = d_loss(d_real.float(), d_fake.float())
    fake_t = random_affine(fake, rng_fake) if cfg.transform_fakes else None
    if cfg.info_in_d_step:
        info_d, _ = info_loss(t, q_cat.float(), q_cont.float(), category, cont, cfg.lambda_cat, cfg.lambda_cont)
        loss_d = loss_d + info_d
        if fake_t is not None:
            with autocast():
                _, q_cat_t, _ = d(fake_t.detach())
            loss_d = loss_d + cfg.lambda_cat * F.cross_entropy(q_cat_t.float(), category)
    i_real = loss_d.new_zeros(())
    if cfg.lambda_real > 0:
        with autocast():
            _, q_cat_transformed, _ = d(real_t)
        i_real = paired_information(q_cat_real, q_cat_transformed)
        loss_d = loss_d - cfg.lambda_real * i_real
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


class BatchStream:
    """Deterministic batches: pass p over the data is permutation p of a
    generator seeded by (seed, p), so step s always sees the same images and
    latents, whether the run was resumed or not."""

    def __init__(self, cfg: TrainConfig, images: torch.Tensor):
        self.cfg, self.images = cfg, images
        self.steps_per_pass = max(len(images) // cfg.batch_size, 1)
        self._pass, self._perm = -1, None

    def real(self, step: int) -> torch.Tensor:
        p, i = divmod(step, self.steps_per_pass)
        if p != self._pass:
            self._pass, self._perm = p, np.random.default_rng([self.cfg.seed, 1, p]).permutation(len(self.images))
        idx = self._perm[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size]
        return self.images[torch.from_numpy(idx)]

    def transform_rngs(self, step: int) -> tuple[torch.Generator, torch.Generator]:
        """Generators of step s's transforms of real and of generated images."""
        base = self.cfg.seed * 1_000_003 + step
        return torch.Generator().manual_seed(base), torch.Generator().manual_seed(base + 500_000_000)

    def latent(self, step: int, device) -> dict[str, torch.Tensor]:
        z = sample_latent(self.cfg.template, self.cfg.batch_size, np.random.default_rng([self.cfg.seed, 2, step]))
        return {k: torch.from_numpy(v).to(device) for k, v in z.items()}


def _to_float_images(u8: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(u8)).to(device=device, dtype=torch.float32).div_(255.0)


def _new_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = cfg.run_name or f"{cfg.dataset}-{cfg.preset}-s{cfg.seed}-{stamp}"
    run = Path(cfg.out_dir) / name
    if (run / "checkpoint.pt").exists():
        raise InfoganError(f"run_name={name!r} already holds a run: pass --resume to continue it, or another name")
    (run / "samples").mkdir(parents=True, exist_ok=True)
    return run


def _point_latest(run: Path) -> None:
    latest = run.parent / "latest"
    tmp = run.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.name)
    os.replace(tmp, latest)


def _rewind_metrics(path: Path, step: int) -> None:
    """On resume, drop rows logged after the checkpoint so the log reads as one run."""
    if path.exists():
        rows = [r for r in path.read_text().splitlines() if r.strip() and json.loads(r)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def train(cfg: TrainConfig, resume: str | Path | None = None, progress: bool = True,
          epochs: int | None = None) -> Path:
    """Train (or resume) a run; returns the run directory.

    resume: a run directory; training continues from its checkpoint with its own
    saved configuration, to `epochs` epochs where given (extending the run).
    """
    cfg.validate()
    if resume is not None:
        run = Path(resume)
        if not (run / "config.json").is_file():
            raise InfoganError(f"resume={run} is not a run directory (no config.json): pass runs/<name> or runs/latest")
        run = run.resolve()
        cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
        if epochs is not None:
            cfg.epochs = epochs
            cfg.validate()
            (run / "config.json").write_text(cfg.to_json())
    else:
        run = _new_run_dir(cfg)
        (run / "config.json").write_text(cfg.to_json())
    _point_latest(run)

    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp_dtype = select_precision(cfg, device)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext

    fetch(cfg.data_dir, cfg.dataset)
    spec = dataset_spec(cfg.dataset)
    train_u8, train_labels = load_split(cfg.data_dir, cfg.dataset, "train")
    test_u8, test_labels = load_split(cfg.data_dir, cfg.dataset, "test")
    if cfg.holdout:
        if cfg.holdout >= len(train_u8):
            raise InfoganError(f"holdout={cfg.holdout} is invalid: the training set has {len(train_u8)} images, "
                               "hold out fewer")
        train_u8, test_u8, test_labels = train_u8[:-cfg.holdout], train_u8[-cfg.holdout:], train_labels[-cfg.holdout:]
    if cfg.train_subset:
        train_u8 = train_u8[: cfg.train_subset]
    if cfg.eval_subset:
        test_u8, test_labels = test_u8[: cfg.eval_subset], test_labels[: cfg.eval_subset]
    train_images = _to_float_images(train_u8, device)
    test_images = _to_float_images(test_u8, device)
    calib_images = train_images[:5000]  # real images, no labels: for batch-norm statistics

    g, d = Generator(cfg.template).to(device), Discriminator(cfg.template, cfg.leaky_slope).to(device)
    opt_d, opt_g = make_optimizers(cfg, g, d)
    step, evaluation = 0, None
    ckpt_path = run / "checkpoint.pt"
    if resume is not None:
        ckpt = load_checkpoint(ckpt_path)
        g.load_state_dict(ckpt["generator"])
        d.load_state_dict(ckpt["discriminator"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        step, evaluation = ckpt["step"], ckpt.get("evaluation")
    metrics_path = run / "metrics.jsonl"
    _rewind_metrics(metrics_path, step)

    stream = BatchStream(cfg, train_images)
    log = MetricsLog(metrics_path, cfg, progress)

    def checkpoint(calibrated: Discriminator | None = None) -> None:
        state = {
            "template": cfg.template.to_dict(), "model": {"leaky_slope": cfg.leaky_slope},
            "generator": g.state_dict(), "discriminator": d.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "step": step, "images_seen": step * cfg.batch_size,
            "config": cfg.to_dict(), "evaluation": evaluation,
        }
        if calibrated is not None:
            state["discriminator_calibrated"] = calibrated.state_dict()
        save_checkpoint(ckpt_path, state)

    judge = load_or_train_judge(cfg.data_dir, cfg.dataset) if cfg.judge else None

    def run_evaluation(with_judge: bool = False) -> Discriminator:
        nonlocal evaluation
        evaluation, calibrated = evaluate(d, test_images, test_labels, list(spec.label_names), calib_images)
        evaluation.update({"dataset": cfg.dataset, "step": step, "images_seen": step * cfg.batch_size})
        if judge is not None and with_judge:
            evaluation["generation"] = generation_quality(g, cfg.template, evaluation["category_to_label"], judge)
        log.evaluation(step, evaluation)
        return calibrated

    g.train(), d.train()
    calibrated = None
    with log:
        while step < cfg.total_steps:
            out = train_step(cfg, g, d, opt_d, opt_g, stream.real(step), stream.latent(step, device), autocast,
                             stream.transform_rngs(step))
            step += 1
            log.step(step, out)
            if step % cfg.steps_per_epoch == 0 or step == cfg.total_steps:
                epoch = -(-step // cfg.steps_per_epoch)
                last = step == cfg.total_steps
                if epoch % cfg.eval_every == 0 or last:
                    calibrated = run_evaluation(with_judge=epoch % cfg.checkpoint_every == 0 or last)
                if epoch % cfg.samples_every == 0 or last:
                    save_sample_grid(g, cfg.template, run / "samples" / f"epoch_{epoch:03d}.png", device=str(device))
                if epoch % cfg.checkpoint_every == 0 and not last:
                    checkpoint()
    if calibrated is None:  # nothing left to train (a finished run resumed)
        calibrated = run_evaluation(with_judge=True)
    checkpoint(calibrated)
    write_atomic(run / "evaluation.json", json.dumps(evaluation, indent=2))
    plot_curves(metrics_path, run / "curves.png", cfg.template.entropy())
    return run


class MetricsLog:
    """The one place that logs: JSON lines to the run, and a progress bar."""

    def __init__(self, path: Path, cfg: TrainConfig, progress: bool, every: int = 10):
        self.path, self.cfg, self.every, self.enabled = path, cfg, every, progress
        self.sums: dict[str, float] = {}
        self.n, self.t0, self.t_last, self.images_last = 0, time.perf_counter(), time.perf_counter(), None
        self.bar = self.task = None
        self.last_acc = float("nan")

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TimeRemainingColumn(), TextColumn("{task.description}"))
            self.bar.__enter__()
            self.task = self.bar.add_task("", total=self.cfg.total_steps)
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def _write(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def step(self, step: int, out: dict) -> None:
        for k, v in out.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.n += 1
        if step % self.every and step != self.cfg.total_steps:
            return
        now = time.perf_counter()
        row = {"kind": "train", "step": step, "images_seen": step * self.cfg.batch_size,
               **{k: v / self.n for k, v in self.sums.items()},
               "images_per_s": self.n * self.cfg.batch_size / (now - self.t_last), "elapsed_s": now - self.t0}
        self._write(row)
        self.sums, self.n, self.t_last = {}, 0, now
        if self.bar is not None:
            self.bar.update(self.task, completed=step, description=(
                f"D {row['loss_d']:.3f}  G {row['loss_g']:.3f}  L_I {row['l_i']:.3f}/{self.cfg.template.entropy():.3f}"
                f"  acc {100 * self.last_acc:.1f}%  {row['images_per_s']:.0f} img/s"))

    def evaluation(self, step: int, ev: dict) -> None:
        self.last_acc = ev["accuracy"]
        row = {"kind": "eval", "step": step, "images_seen": step * self.cfg.batch_size,
               "elapsed_s": time.perf_counter() - self.t0,
               **{k: ev[k] for k in ("accuracy", "labels_with_own_category", "category_share_max", "category_to_label",
                                      "transform_agreement", "transform_agreement_min")}}
        if "generation" in ev:
            gen = ev["generation"]
            row.update({"purity": gen["purity_mean"], "digits_generated": gen["digits_generated"],
                        "digit_kept": [c["digit_kept"] for c in gen["codes"]],
                        "slant_corr": [c["slant_corr"] for c in gen["codes"]],
                        "width_corr": [c["width_corr"] for c in gen["codes"]]})
        self._write(row)
